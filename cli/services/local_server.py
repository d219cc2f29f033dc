"""The one skeleton of a local server that ``ovp … start`` runs as a detached process and ``stop`` ends.

:class:`LocalServer` holds what Neo4j and Redis do alike: the status probe (port open, then a login), a start that is
idempotent and serialised by a lock file, the wait until the server answers, and a stop that only ever signals the
process our pid file names. A subclass says where its files are, how to log in, how to launch its process, and what
to tell the user when something is in the way.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from abc import ABC, abstractmethod
from pathlib import Path

from cli.services import (
    ServerStatus,
    StopResult,
    command_line,
    describe_process,
    exclusive,
    is_alive,
    listening_pid,
    port_accepts,
    read_pid,
    terminate,
)
from ovp.errors import ServiceError
from ovp.settings import Settings

log = logging.getLogger(__name__)


class LocalServer(ABC):
    """One local server of one ``OVP_HOME``, as the ``settings`` describe it.

    Class attributes a subclass sets:
        service: ``"neo4j"`` or ``"redis"`` (the status's name and the pid file's owner).
        title: how messages name it (``"Neo4j"``).
        scheme: the address's scheme (``"bolt"``, ``"redis"``).
        protocol: what answers once it is up (``"Bolt"``, ``"PING"``).
        port_name: how messages name the port a start refuses to move (``"bolt port"``, ``"port"``).
        port_line: the line of the generated config that gives the port (its first group).
        poll_s: how often a start checks whether the server answers.
        start_timeout_s, stop_timeout_s: how long ``start`` waits for an answer and ``stop`` for an exit, by default.
    """

    service: str
    title: str
    scheme: str
    protocol: str
    port_line: re.Pattern[str]
    start_timeout_s: float
    stop_timeout_s: float
    port_name: str = "port"
    poll_s: float = 0.2

    def __init__(self, settings: Settings, *, port: int, root: Path, pid_file: Path, conf_file: Path, lock_file: Path,
                 log_file: Path) -> None:
        """``port``: where clients connect; ``root``: this server's folder under ``OVP_HOME``; ``pid_file``: where
        ``start`` records the process it launched; ``conf_file``: the config every start writes; ``lock_file``: the
        lock that serialises start and stop; ``log_file``: the log to read when the server does not come up."""
        self.settings = settings
        self.port = port
        self.root = root
        self.pid_file = pid_file
        self.conf_file = conf_file
        self.lock_file = lock_file
        self.log_file = log_file

    # --- what a subclass says about its server -----------------------------------------------------------------

    @abstractmethod
    def is_server(self, argv: list[str]) -> bool:
        """Whether a live process with this command line is our server (not a recycled pid)."""

    @abstractmethod
    def login(self) -> tuple[str, str | None]:
        """``("up", version)``, ``("refused", None)`` (credentials) or ``("unreachable", None)``."""

    @abstractmethod
    def refused_detail(self) -> str:
        """The status detail when the server refuses the configured credentials."""

    @abstractmethod
    def refuse_taken_ports(self, current: ServerStatus) -> None:
        """Raise ServiceError when a process that ovp did not start holds a port this server needs."""

    @abstractmethod
    def launch(self) -> int:
        """Prepare the files (config, binaries) and start the server detached; return its pid (already recorded)."""

    @abstractmethod
    def log_excerpt(self) -> str:
        """The last lines of the server's logs, for error messages."""

    @abstractmethod
    def refused_error(self, pid: int) -> ServiceError:
        """The error a start raises when the server is up but refuses the configured credentials."""

    def on_refused(self) -> bool:
        """Called while starting when the server refuses the credentials; ``True`` to check again at once."""
        return False

    @property
    def logs_hint(self) -> str:
        """Which logs to read when the server does not come up."""
        return f"read {self.log_file}"

    # --- the shared skeleton -----------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def configured_port(self) -> int | None:
        """The port in the config of the last start (what a running server of ours listens on)."""
        try:
            text = self.conf_file.read_text()
        except FileNotFoundError:
            return None
        match = self.port_line.search(text)
        return int(match.group(1)) if match else None

    def our_pid(self) -> int | None:
        """The pid in our pid file if that process is alive and really is our server."""
        pid = read_pid(self.pid_file)
        if pid is None or not is_alive(pid):
            return None
        return pid if self.is_server(command_line(pid)) else None

    def status(self) -> ServerStatus:
        """Whether the server on 127.0.0.1:``port`` answers a login. Never raises for a server that is down.

        A server of ours that runs on another port (its last config) says nothing about this one.
        """
        began = time.monotonic()
        pid, running_port, detail = self.our_pid(), self.configured_port(), ""
        if pid is not None and running_port != self.port:
            detail = f"the {self.service} started from {self.root} (pid {pid}) listens on port {running_port}"
            pid = None
        result = ServerStatus(self.service, False, self.address, pid=pid, ours=pid is not None, detail=detail)
        if not port_accepts(self.port):
            if pid is not None:
                detail = f"pid {pid} is running but {self.protocol} does not answer yet; starting, or see {self.log_file}"
            return dataclasses.replace(result, detail=detail, elapsed_s=time.monotonic() - began)
        if pid is None:
            result = dataclasses.replace(result, pid=listening_pid(self.port))
        state, version = self.login()
        detail = {
            "up": "",
            "refused": self.refused_detail(),
            "unreachable": f"port {self.port} is open but does not answer {self.protocol} "
                           f"(held by {describe_process(result.pid)})",
        }[state]
        return dataclasses.replace(result, up=state == "up", version=version, detail=detail,
                                   elapsed_s=time.monotonic() - began)

    def start(self, timeout_s: float | None = None) -> ServerStatus:
        """Start the server and wait until it answers a login (up to ``timeout_s``, default ``start_timeout_s``).

        Idempotent: a server that is already up is returned as is (``started=False``); one of ours that is starting
        is waited for, never forked a second time onto the same data folder.

        Raises:
            ServiceError: a port is held by a process that is not ours, ours runs on another port, the server
                exited, or it did not answer within ``timeout_s`` (the message names the log and its last lines).
        """
        with self._exclusive():
            return self._start(self.start_timeout_s if timeout_s is None else timeout_s)

    def _start(self, timeout_s: float) -> ServerStatus:
        began = time.monotonic()
        current = self.status()
        if current.up:
            if not current.ours:
                log.warning("%s at %s answers but was not started by ovp (%s); using it as is",
                            self.title, current.address, describe_process(current.pid))
            return dataclasses.replace(current, detail="already running", elapsed_s=time.monotonic() - began)
        pid = self.our_pid()
        if pid is None:
            if self.pid_file.exists():
                log.info("removing stale pid file %s", self.pid_file)
                self.pid_file.unlink(missing_ok=True)
            self.refuse_taken_ports(current)
            pid = self.launch()
        elif self.configured_port() != self.port:
            raise ServiceError(
                f"the {self.title} started from {self.root} (pid {pid}) already runs on {self.port_name} "
                f"{self.configured_port()}, not {self.port}",
                hint=f"`ovp {self.service} stop` it first, or use another OVP_HOME for a second server",
            )
        else:
            log.info("%s (pid %d) is already starting; waiting for it", self.title, pid)
        self._wait_until_up(pid, timeout_s)
        final = self.status()
        log.info("%s up at %s after %.1f s", self.title, final.address, time.monotonic() - began)
        return dataclasses.replace(final, started=True, elapsed_s=time.monotonic() - began)

    def _wait_until_up(self, pid: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if not is_alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(f"{self.title} (pid {pid}) exited during start-up: {self.log_excerpt()}",
                                   hint=self.logs_hint)
            if port_accepts(self.port):
                state, _ = self.login()
                if state == "up":
                    return
                if state == "refused":
                    if self.on_refused():
                        continue
                    raise self.refused_error(pid)
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.title} (pid {pid}) did not answer {self.protocol} on port {self.port} within "
                    f"{timeout_s:.0f} s: {self.log_excerpt()}",
                    hint=f"{self.logs_hint}; it is still running (`ovp {self.service} stop` ends it)",
                )
            time.sleep(self.poll_s)

    def stop(self, timeout_s: float | None = None) -> StopResult:
        """Stop the server that ``start`` launched (SIGTERM, then SIGKILL after ``timeout_s``, default
        ``stop_timeout_s``) and remove its pid file.

        A process that ovp did not start is left alone and named in the result, whatever port it holds; so is a
        server of ours that runs on another port than the settings name (settings that name another server).
        """
        with self._exclusive():
            return self._stop(self.stop_timeout_s if timeout_s is None else timeout_s)

    def _stop(self, timeout_s: float) -> StopResult:
        began = time.monotonic()
        our_pid, running_port = self.our_pid(), self.configured_port()
        if our_pid is not None and running_port is not None and running_port != self.port:
            detail = (f"not stopped: the {self.service} started from {self.pid_file.parent} (pid {our_pid}) runs on "
                      f"port {running_port}, and the settings name port {self.port}")
            return StopResult(self.service, False, None, detail, time.monotonic() - began)
        recorded = read_pid(self.pid_file)
        self.pid_file.unlink(missing_ok=True)
        if our_pid is None:
            detail = "not running" if recorded is None else f"not running (removed stale pid file for pid {recorded})"
            if port_accepts(self.port):
                detail += f"; port {self.port} is held by {describe_process(listening_pid(self.port))}, which ovp did not start"
            return StopResult(self.service, False, None, detail, time.monotonic() - began)
        log.info("stopping %s (pid %d)", self.service, our_pid)
        graceful = terminate(our_pid, timeout_s=timeout_s, name=self.service)
        detail = "stopped" if graceful else f"killed after {timeout_s:.0f} s without exiting on SIGTERM"
        return StopResult(self.service, True, our_pid, detail, time.monotonic() - began)

    def _exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lock file for the block: two concurrent ``start`` calls (two terminals, two test sessions) must
        not launch two servers onto the same data folder. The second waits, then finds it up."""
        return exclusive(self.lock_file)
