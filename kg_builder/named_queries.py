"""Named, documented, read-only Cypher queries from ``cypher/queries/*.cypher``, and the runner that validates their
parameters and runs them through :meth:`kg_builder.graph.Graph.read`.

Each file holds one query preceded by a header of ``//`` lines::

    // name: similar_videos
    // description: Videos whose fused embedding is closest to the given video's (cosine, vector index).
    // param: video_id id - the video to start from
    // param: k int[1..50] 10 how many similar videos to return

A param line is ``// param: NAME TYPE DEFAULT DESCRIPTION``. TYPE is ``int``, ``float``, ``string`` or ``id``, with
optional bounds in brackets: ``int[1..100]``, ``float[0..1]``, ``string[..200]`` (bounds on a string are its length).
``id`` is a node id (a CURIE such as ``OVP:glaucoma`` or a video id): 1–128 characters of ``[A-Za-z0-9_.:-]``.
A DEFAULT of ``-`` makes the parameter required. Other ``//`` lines are comments (queries are commented line by line).

Safety, in three layers: parameter values only ever travel as Cypher parameters; a query whose text (comments and
string literals removed) holds a write clause or calls a procedure off the allow-list is rejected when the files are
loaded; and the runner sends it in a READ transaction, which the server refuses to write in.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ovp.errors import OVPError
from ovp.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from kg_builder.graph import Graph

log = logging.getLogger(__name__)

QUERY_DIR = PROJECT_ROOT / "cypher" / "queries"
PARAM_TYPES = ("int", "float", "string", "id")
#: What an ``id`` parameter accepts: the CURIEs of the knowledge graph and the manifest's video ids.
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: A string parameter without an explicit upper bound is held to this many characters.
DEFAULT_MAX_STRING = 1000
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")

#: Clauses that change the graph or the schema, or load data; a named query containing one is refused at load time.
WRITE_CLAUSES = re.compile(
    r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|DROP|FOREACH|LOAD\s+CSV|INSERT|ALTER|RENAME|GRANT|DENY|REVOKE"
    r"|IN\s+TRANSACTIONS|TERMINATE|START\s+DATABASE|STOP\s+DATABASE)\b",
    re.IGNORECASE,
)
#: The only procedures a named query may CALL: index lookups, which read.
ALLOWED_PROCEDURES = frozenset({"db.index.fulltext.querynodes", "db.index.vector.querynodes"})
_CALL = re.compile(r"\bCALL\s*(\{|[A-Za-z_][\w.]*)", re.IGNORECASE)
_PARAM_REF = re.compile(r"\$([A-Za-z_]\w*)")
_TYPE_SPEC = re.compile(r"(int|float|string|id)(?:\[\s*([^.\]\s]*)\s*\.\.\s*([^\]\s]*)\s*\])?$")


class NamedQueryError(OVPError):
    """A named query file is malformed or unsafe (raised when the files are loaded)."""

    code = "named_query_invalid"


class UnknownQuery(OVPError):
    """No named query has that name."""

    code = "unknown_query"
    http_status = 404


class QueryParamError(OVPError):
    """A parameter given to a named query is missing, unknown, of the wrong type or out of bounds."""

    code = "invalid_param"
    http_status = 400


@dataclass(frozen=True)
class QueryParam:
    """One declared parameter: type, bounds (inclusive; on length for strings), default (None = required)."""

    name: str
    type: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    def to_json(self) -> dict[str, Any]:
        """The parameter as the API's ``GET /queries`` and ``ovp query --list`` show it."""
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "min": self.minimum,
            "max": self.maximum,
            "description": self.description,
        }

    def convert(self, value: object) -> Any:
        """``value`` (a JSON value, or a string from the command line) as this parameter's type, checked.

        Raises:
            QueryParamError: wrong type or out of bounds; the message names the parameter and what it accepts.
        """
        if self.type == "int":
            number = _to_int(value)
            if number is None:
                raise QueryParamError(f"parameter {self.name!r} must be an integer, got {_show(value)}")
            self._check_range(number)
            return number
        if self.type == "float":
            real = _to_float(value)
            if real is None:
                raise QueryParamError(f"parameter {self.name!r} must be a finite number, got {_show(value)}")
            self._check_range(real)
            return real
        if not isinstance(value, str):
            raise QueryParamError(f"parameter {self.name!r} must be a string, got {_show(value)}")
        if self.type == "id":
            if not ID_PATTERN.fullmatch(value):
                raise QueryParamError(
                    f"parameter {self.name!r} must be an id of 1-128 characters from [A-Za-z0-9_.:-], got {_show(value)}"
                )
            return value
        if self.minimum is not None and len(value) < self.minimum:
            raise QueryParamError(f"parameter {self.name!r} must have at least {int(self.minimum)} characters")
        limit = int(self.maximum) if self.maximum is not None else DEFAULT_MAX_STRING
        if len(value) > limit:
            raise QueryParamError(f"parameter {self.name!r} must have at most {limit} characters, got {len(value)}")
        return value

    def _check_range(self, number: float) -> None:
        if self.minimum is not None and number < self.minimum:
            raise QueryParamError(f"parameter {self.name!r} must be >= {_fmt(self.minimum)}, got {_fmt(number)}")
        if self.maximum is not None and number > self.maximum:
            raise QueryParamError(f"parameter {self.name!r} must be <= {_fmt(self.maximum)}, got {_fmt(number)}")


@dataclass(frozen=True)
class NamedQuery:
    """One query file: its name, description, declared parameters and Cypher text (header and comments included)."""

    name: str
    description: str
    params: tuple[QueryParam, ...]
    text: str
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "params": [p.to_json() for p in self.params]}

    def bind(self, given: Mapping[str, object]) -> dict[str, Any]:
        """Validated Cypher parameters: each declared one from ``given`` (converted) or its default.

        Raises:
            QueryParamError: an unknown name, a missing required parameter, or a bad value.
        """
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise QueryParamError(
                f"query {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(declared) or 'none'}"
            )
        bound: dict[str, Any] = {}
        for param in self.params:
            if param.name in given and given[param.name] is not None:
                bound[param.name] = param.convert(given[param.name])
            elif param.required:
                raise QueryParamError(f"query {self.name!r} needs parameter {param.name!r} ({param.description})")
            else:
                bound[param.name] = param.default
        return bound


# --- parsing ------------------------------------------------------------------------------------------------------


def parse_query(text: str, origin: str = "<query>", path: Path | None = None) -> NamedQuery:
    """Parse one query file's text.

    Raises:
        NamedQueryError: a missing name or description, a malformed param line, a $parameter used but not declared
            (or declared but unused), or a write clause / disallowed procedure call in the Cypher.
    """
    name = description = None
    params: list[QueryParam] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("//"):
            continue
        body = stripped[2:].strip()
        key, sep, rest = body.partition(":")
        if not sep or key.strip() not in ("name", "description", "param"):
            continue
        key, rest = key.strip(), rest.strip()
        if key == "name":
            if not NAME_PATTERN.fullmatch(rest):
                raise NamedQueryError(f"{origin}:{lineno}: name {rest!r} must match {NAME_PATTERN.pattern}")
            name = rest
        elif key == "description":
            description = rest
        else:
            params.append(parse_param(rest, f"{origin}:{lineno}"))
    if name is None or not description:
        raise NamedQueryError(f"{origin}: needs '// name:' and '// description:' header lines")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise NamedQueryError(f"{origin}: a parameter is declared twice ({', '.join(names)})")
    check_read_only(text, origin)
    used = set(_PARAM_REF.findall(cypher_code(text)))
    if used - set(names):
        raise NamedQueryError(f"{origin}: uses undeclared parameter(s) {', '.join(sorted(used - set(names)))}")
    if set(names) - used:
        raise NamedQueryError(f"{origin}: declares unused parameter(s) {', '.join(sorted(set(names) - used))}")
    return NamedQuery(name=name, description=description, params=tuple(params), text=text, path=path)


def parse_param(spec: str, origin: str) -> QueryParam:
    """``NAME TYPE DEFAULT DESCRIPTION`` → :class:`QueryParam` (DEFAULT ``-`` = required).

    Raises:
        NamedQueryError: malformed line, unknown type, bad bounds or a default that violates them.
    """
    parts = spec.split(None, 3)
    if len(parts) < 4:
        raise NamedQueryError(f"{origin}: param line needs NAME TYPE DEFAULT DESCRIPTION, got {spec!r}")
    name, type_spec, default_text, description = parts
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise NamedQueryError(f"{origin}: bad parameter name {name!r}")
    match = _TYPE_SPEC.fullmatch(type_spec)
    if not match:
        raise NamedQueryError(f"{origin}: type {type_spec!r} is not one of {', '.join(PARAM_TYPES)} (with optional [min..max])")
    kind, low, high = match.group(1), match.group(2), match.group(3)
    if kind == "id" and (low or high):
        raise NamedQueryError(f"{origin}: an id parameter takes no bounds")
    try:
        minimum = float(low) if low else None
        maximum = float(high) if high else None
    except ValueError:
        raise NamedQueryError(f"{origin}: bounds of {type_spec!r} are not numbers") from None
    if minimum is not None and maximum is not None and minimum > maximum:
        raise NamedQueryError(f"{origin}: empty range in {type_spec!r}")
    param = QueryParam(name, kind, None, description, minimum, maximum)
    if default_text != "-":
        try:
            default = param.convert(default_text)
        except QueryParamError as exc:
            raise NamedQueryError(f"{origin}: default {default_text!r}: {exc.message}") from None
        param = QueryParam(name, kind, default, description, minimum, maximum)
    return param


def cypher_code(text: str) -> str:
    """The Cypher of ``text`` with ``//`` and ``/* */`` comments and string literals blanked (what the checks read)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif ch in ("'", '"', "`"):
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            # Backticked names stay (they are identifiers, e.g. labels), their content cannot be a clause.
            out.append(ch + ch if ch != "`" else "`x`")
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def check_read_only(text: str, origin: str = "<query>") -> None:
    """Refuse a query that writes, changes the schema, loads data or calls a procedure off the allow-list.

    Raises:
        NamedQueryError: naming the offending clause.
    """
    code = cypher_code(text)
    found = WRITE_CLAUSES.search(code)
    if found:
        raise NamedQueryError(f"{origin}: named queries are read-only, found {found.group(0).upper()!r}")
    for call in _CALL.finditer(code):
        target = call.group(1)
        if target == "{" or target.lower() not in ALLOWED_PROCEDURES:
            raise NamedQueryError(
                f"{origin}: CALL {target} is not allowed in a named query (allowed: {', '.join(sorted(ALLOWED_PROCEDURES))})"
            )


def load_queries(directory: Path = QUERY_DIR) -> dict[str, NamedQuery]:
    """Every ``*.cypher`` file of ``directory``, parsed and checked, by name (sorted).

    Raises:
        NamedQueryError: any file is malformed or unsafe, or two files share a name.
    """
    queries: dict[str, NamedQuery] = {}
    for path in sorted(Path(directory).glob("*.cypher")):
        query = parse_query(path.read_text(encoding="utf-8"), str(path), path)
        if query.name in queries:
            raise NamedQueryError(f"{path}: name {query.name!r} is also used by {queries[query.name].path}")
        queries[query.name] = query
    log.debug("loaded %d named queries from %s", len(queries), directory)
    return dict(sorted(queries.items()))


def get_query(queries: Mapping[str, NamedQuery], name: str) -> NamedQuery:
    """The query called ``name``; :class:`UnknownQuery` (404 in the API) with the known names otherwise."""
    try:
        return queries[name]
    except KeyError:
        known = ", ".join(queries) or "none"
        raise UnknownQuery(f"no named query {name[:80]!r}", hint=f"known queries: {known}") from None


def run_named_query(
    graph: "Graph", name: str, params: Mapping[str, object] | None = None, *, queries: Mapping[str, NamedQuery] | None = None,
    timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    """Validate ``params`` against the query's declaration and run it read-only; return its rows.

    ``timeout_s``: the longest the server lets it run (``Settings.query_timeout_s``).

    Raises:
        UnknownQuery: no such query.
        QueryParamError: a parameter is missing, unknown or invalid.
        QueryTimeout: it ran longer than ``timeout_s``.
        GraphUnavailable: Neo4j cannot be reached.
    """
    query = get_query(queries if queries is not None else load_queries(), name)
    bound = query.bind(params or {})
    return graph.read(query.text, bound, timeout_s=timeout_s)


# --- value conversion ---------------------------------------------------------------------------------------------


#: Cypher integers are 64-bit; anything wider would fail inside the server instead of here.
INT64_MAX = 2**63 - 1


def _to_int(value: object) -> int | None:
    number: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()):
        number = int(value)
    return number if number is not None and -INT64_MAX <= number <= INT64_MAX else None


def _to_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        real = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            real = float(value)
        except ValueError:
            return None
    else:
        return None
    return real if math.isfinite(real) else None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
