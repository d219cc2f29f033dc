"""The one place that owns the official ``neo4j`` driver: connection, managed transactions, batched writes.

Every query names its database; every value reaches Cypher as a parameter. Reads and writes run as managed
transactions, which the driver retries on transient errors (leader switch, deadlock, connection reset) for up to
``max_transaction_retry_time`` seconds. Failures to reach the server surface as :class:`GraphUnavailable` with a
message that says what to do.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable, Iterator, TypeVar

import neo4j
from neo4j import GraphDatabase, Query, RoutingControl
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable, SessionExpired

from ovp.errors import GraphUnavailable, QueryTimeout
from ovp.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Rows per UNWIND batch: large enough to amortise the round trip, small enough for a modest heap.
DEFAULT_BATCH_SIZE = 1000


def unreachable_message(uri: str) -> str:
    return f"Neo4j is not reachable at {uri} — start it with `ovp neo4j start` or set OVP_NEO4J_URI"


class Graph:
    """A connection to Neo4j. Use as a context manager, or call :meth:`close`.

    Args:
        settings: where and how to connect (read once by the entry point and passed down).
        retry_time_s: how long managed transactions keep retrying transient errors.
    """

    def __init__(self, settings: Settings, *, retry_time_s: float = 15.0) -> None:
        self.settings = settings
        self.database = self.settings.neo4j_database
        self._driver = GraphDatabase.driver(
            self.settings.neo4j_uri,
            auth=(self.settings.neo4j_user, self.settings.neo4j_password),
            connection_timeout=5.0,
            connection_acquisition_timeout=10.0,
            max_transaction_retry_time=retry_time_s,
        )
        self._retries = 0
        self._retries_lock = threading.Lock()

    @classmethod
    def connect(cls, settings: Settings, **kwargs: Any) -> "Graph":
        """Open a connection and check that the server answers.

        Raises:
            GraphUnavailable: the server cannot be reached or refuses the credentials.
        """
        graph = cls(settings, **kwargs)
        try:
            graph.verify()
        except GraphUnavailable:
            graph.close()
            raise
        return graph

    def __enter__(self) -> "Graph":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._driver.close()

    # --- connectivity ---------------------------------------------------------------------------------------

    def verify(self) -> dict[str, str]:
        """Check the server answers; return its agent string and edition.

        Raises:
            GraphUnavailable: unreachable, or the credentials are refused.
        """
        with self._translate_errors():
            info = self._driver.get_server_info()
        return {"uri": self.settings.neo4j_uri, "agent": info.agent, "protocol": ".".join(map(str, info.protocol_version))}

    def _translate_errors(self) -> "_ErrorTranslator":
        return _ErrorTranslator(self.settings)

    # --- queries --------------------------------------------------------------------------------------------

    def read(self, query: str, params: dict[str, Any] | None = None, *, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """Run a read query in a managed transaction; return its records as dicts.

        ``timeout_s``: the server ends the transaction after this long (QueryTimeout); for queries whose cost the
        caller's parameters decide (named queries from anonymous requests).
        """
        statement = Query(query, timeout=timeout_s) if timeout_s is not None else query
        with self._translate_errors():
            records, _, _ = self._driver.execute_query(
                statement, params or {}, database_=self.database, routing_=RoutingControl.READ
            )
        return [record.data() for record in records]

    def write(self, query: str, params: dict[str, Any] | None = None) -> dict[str, int]:
        """Run a write query in a managed transaction; return the summary counters that are non-zero."""
        with self._translate_errors():
            _, summary, _ = self._driver.execute_query(
                query, params or {}, database_=self.database, routing_=RoutingControl.WRITE
            )
        return _counters(summary)

    def write_transaction(self, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        """Run ``work(tx)`` as one managed write transaction: all of it lands or none of it (retried if transient)."""
        with self._translate_errors(), self._driver.session(database=self.database) as session:
            return session.execute_write(self._counting(work))

    def read_transaction(self, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        """Run ``work(tx)`` as one managed read transaction."""
        with self._translate_errors(), self._driver.session(database=self.database) as session:
            return session.execute_read(self._counting(work))

    @property
    def retries(self) -> int:
        """How many times, so far, a transaction function was run again after a transient error (a deadlock
        between writers, a lost connection): every run after the first of one :meth:`write_transaction` or
        :meth:`read_transaction`."""
        return self._retries

    def _counting(self, work: Callable[[neo4j.ManagedTransaction], T]) -> Callable[[neo4j.ManagedTransaction], T]:
        runs = 0

        def counted(tx: neo4j.ManagedTransaction) -> T:
            nonlocal runs
            runs += 1
            if runs > 1:
                with self._retries_lock:
                    self._retries += 1
                log.info("transaction function run again after a transient error (run %d)", runs)
            return work(tx)

        return counted

    def write_batches(
        self,
        query: str,
        rows: Iterable[dict[str, Any]],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Run ``query`` (which reads ``$rows``, e.g. ``UNWIND $rows AS row MERGE …``) once per batch of rows.

        Each batch is its own managed transaction, so a failure part-way leaves whole batches only; with MERGE the
        call can simply be repeated. Returns the number of rows written; ``on_batch(n)`` is called after each batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        total = 0
        for batch in _chunks(rows, batch_size):
            self.write(query, {"rows": batch})
            total += len(batch)
            if on_batch is not None:
                on_batch(len(batch))
        return total


class _ErrorTranslator:
    """Context manager that turns the driver's connection and auth errors into :class:`GraphUnavailable`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            return False
        if isinstance(exc, AuthError):
            raise GraphUnavailable(
                f"Neo4j at {self.settings.neo4j_uri} refused user {self.settings.neo4j_user!r}",
                hint="check OVP_NEO4J_USER and OVP_NEO4J_PASSWORD",
            ) from exc
        if isinstance(exc, (ServiceUnavailable, SessionExpired, ConnectionError, OSError)):
            raise GraphUnavailable(unreachable_message(self.settings.neo4j_uri)) from exc
        if isinstance(exc, ClientError) and "TransactionTimedOut" in (exc.code or ""):
            raise QueryTimeout("the query ran longer than its time limit and was stopped",
                               hint="narrow it (a smaller limit, a more specific parameter)") from exc
        return False


def _counters(summary: neo4j.ResultSummary) -> dict[str, int]:
    counters = summary.counters
    names = (
        "nodes_created", "nodes_deleted", "relationships_created", "relationships_deleted",
        "properties_set", "labels_added", "labels_removed", "indexes_added", "constraints_added",
    )
    return {name: getattr(counters, name) for name in names if getattr(counters, name)}


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def wait_until_available(settings: Settings, timeout_s: float = 60.0) -> dict[str, str]:
    """Poll until Neo4j answers or ``timeout_s`` passes (for scripts that start the server and go on at once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with Graph(settings) as graph:
                return graph.verify()
        except GraphUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
