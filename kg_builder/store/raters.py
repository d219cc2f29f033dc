"""Reviewer accounts in the graph: ``(:Rater {name, password_hash, token_id, token_hash, active, created_at,
revoked_at})``.

Only hashes are stored (the password as an argon2 hash, the API token's secret part as a SHA-256 digest; the caller
makes both, see :mod:`api.accounts`). The token's public id is stored in clear so a token is found by one index seek and
then compared in constant time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kg_builder.graph import Graph


@dataclass(frozen=True)
class RaterRecord:
    """A reviewer account as stored (hashes, never secrets)."""

    name: str
    password_hash: str
    token_id: str
    token_hash: str
    active: bool
    created_at: str
    revoked_at: str | None = None
    password_temporary: bool = False  # the one-time password from `ovp raters add`: to be replaced at first sign-in


_FIELDS = "r {.name, .password_hash, .token_id, .token_hash, .active, .created_at, .revoked_at, .password_temporary} AS rater"

# A new account, or a revoked one given fresh credentials (its ratings stay linked to it).
UPSERT_RATER = """
MERGE (r:Rater {name: $name})
ON CREATE SET r.created_at = $now
WITH r
// an active account is never overwritten: revoke it first
WHERE coalesce(r.active, false) = false
SET r.password_hash = $password_hash, r.token_id = $token_id, r.token_hash = $token_hash, r.active = true,
    r.password_temporary = true, r.revoked_at = null, r.reactivated_at = CASE WHEN r.created_at = $now THEN null ELSE $now END
RETURN r.name AS name
"""

# Revoking drops the credentials (nothing can sign in or submit with them) and keeps the ratings.
REVOKE_RATER = """
MATCH (r:Rater {name: $name})
SET r.active = false, r.revoked_at = $now, r.password_hash = null, r.token_hash = null, r.token_id = null
RETURN r.name AS name
"""

# The reviewer's own password replaces the one-time one (only on an active account).
SET_PASSWORD = """
MATCH (r:Rater {name: $name}) WHERE r.active
SET r.password_hash = $password_hash, r.password_temporary = false, r.password_changed_at = $now
RETURN r.name AS name
"""

RATER_BY_NAME = f"MATCH (r:Rater {{name: $name}}) RETURN {_FIELDS}"
RATER_BY_TOKEN_ID = f"MATCH (r:Rater {{token_id: $token_id}}) RETURN {_FIELDS}"

LIST_RATERS = """
MATCH (r:Rater)
RETURN r.name AS name, coalesce(r.active, false) AS active, r.created_at AS created_at, r.revoked_at AS revoked_at,
       COUNT { (r)-[:RATED]->(:Rating) } AS ratings
ORDER BY name
"""


def _record(row: dict[str, Any]) -> RaterRecord:
    data = row["rater"]
    return RaterRecord(
        name=data["name"], password_hash=data.get("password_hash") or "", token_id=data.get("token_id") or "",
        token_hash=data.get("token_hash") or "", active=bool(data.get("active")), created_at=data.get("created_at") or "",
        revoked_at=data.get("revoked_at"), password_temporary=bool(data.get("password_temporary")),
    )


def upsert_rater(graph: "Graph", name: str, *, password_hash: str, token_id: str, token_hash: str, now: str) -> bool:
    """Create the account ``name`` (or re-open a revoked one) with these hashes; False when an active one exists."""
    result = graph.write_transaction(
        lambda tx: tx.run(UPSERT_RATER, name=name, password_hash=password_hash, token_id=token_id,
                          token_hash=token_hash, now=now).data()
    )
    return bool(result)


def set_password(graph: "Graph", name: str, *, password_hash: str, now: str) -> bool:
    """Store the reviewer's own password hash (the one-time password stops working); False when not active."""
    return bool(graph.write_transaction(
        lambda tx: tx.run(SET_PASSWORD, name=name, password_hash=password_hash, now=now).data()))


def revoke_rater(graph: "Graph", name: str, *, now: str) -> bool:
    """Revoke the account ``name``; False when there is none."""
    result = graph.write_transaction(lambda tx: tx.run(REVOKE_RATER, name=name, now=now).data())
    return bool(result)


def rater_by_name(graph: "Graph", name: str) -> RaterRecord | None:
    """The account called ``name``, or None."""
    rows = graph.read(RATER_BY_NAME, {"name": name})
    return _record(rows[0]) if rows else None


def rater_by_token_id(graph: "Graph", token_id: str) -> RaterRecord | None:
    """The account whose API token has the public id ``token_id``, or None."""
    rows = graph.read(RATER_BY_TOKEN_ID, {"token_id": token_id})
    return _record(rows[0]) if rows else None


def list_raters(graph: "Graph") -> list[dict[str, Any]]:
    """Every account: name, active, created_at, revoked_at and how many ratings it made."""
    return graph.read(LIST_RATERS)
