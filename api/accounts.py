"""Reviewer accounts: creating one (a one-time password and an API token, both shown once and stored hashed),
replacing the one-time password with the reviewer's own, revoking it, and checking a password or a token.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's recommendation). API tokens are
``ovpr_<id>_<secret>``: the id is stored in clear to find the account with one index seek, the 256-bit secret as its
SHA-256 digest (a fast hash is enough for a random secret of that size; nothing can be guessed from it), and the
digests are compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kg_builder.graph import Graph
from kg_builder.store.raters import (RaterRecord, rater_by_name, rater_by_token_id, revoke_rater, set_password,
                                     upsert_rater)
from ovp.errors import OVPError

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: A reviewer's own password: at least this long (length is what makes a password hard to guess; no other rule).
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
TOKEN_PATTERN = re.compile(r"ovpr_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_HASHER = PasswordHasher()
#: Verified against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _HASHER.hash("no such reviewer")


class RaterError(OVPError):
    """A reviewer account cannot be created or revoked as asked."""

    code = "rater_error"
    http_status = 400


@dataclass(frozen=True)
class NewRater:
    """What ``ovp raters add`` prints once: the name, a one-time password and an API token."""

    name: str
    password: str
    token: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    """``name`` if it is a valid reviewer name (1–64 of ``[A-Za-z0-9_.-]``); RaterError otherwise."""
    if not NAME_PATTERN.fullmatch(name):
        raise RaterError(f"reviewer name {name[:80]!r} is not valid", hint="use 1-64 letters, digits, '_', '.' or '-'")
    return name


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_rater(graph: Graph, name: str) -> NewRater:
    """Create the reviewer ``name`` (or re-open a revoked one) with a fresh password and token.

    Raises:
        RaterError: the name is invalid, or an active account of that name exists.
    """
    check_name(name)
    password = secrets.token_urlsafe(12)
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    created = upsert_rater(graph, name, password_hash=_HASHER.hash(password), token_id=token_id,
                           token_hash=token_digest(secret), now=_now())
    if not created:
        raise RaterError(f"reviewer {name!r} already exists", hint=f"revoke it first with `ovp raters revoke {name}`")
    log.info("reviewer %s created", name)
    return NewRater(name=name, password=password, token=f"ovpr_{token_id}_{secret}")


def remove_rater(graph: Graph, name: str) -> None:
    """Revoke ``name``: its password and token stop working at once; its ratings stay.

    Raises:
        RaterError: no such reviewer.
    """
    check_name(name)
    if not revoke_rater(graph, name, now=_now()):
        raise RaterError(f"no reviewer {name!r}", hint="`ovp raters list` shows the accounts")
    log.info("reviewer %s revoked", name)


def check_password(graph: Graph, name: str, password: str) -> RaterRecord | None:
    """The active reviewer ``name`` if ``password`` is theirs; None otherwise (same work either way)."""
    rater = rater_by_name(graph, name) if NAME_PATTERN.fullmatch(name) else None
    stored = rater.password_hash if rater is not None and rater.active and rater.password_hash else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return rater if stored is not _DUMMY_HASH else None


def check_token(graph: Graph, token: str) -> RaterRecord | None:
    """The active reviewer whose API token this is; None otherwise."""
    match = TOKEN_PATTERN.fullmatch(token)
    if not match:
        return None
    rater = rater_by_token_id(graph, match.group(1))
    expected = rater.token_hash if rater is not None and rater.active and rater.token_hash else token_digest("-")
    valid = hmac.compare_digest(token_digest(match.group(2)).encode(), expected.encode())
    return rater if valid and rater is not None and rater.active else None


def change_password(graph: Graph, name: str, current: str, new: str) -> None:
    """Replace the reviewer's password (the one-time one at first sign-in) after checking the current one.

    Raises:
        RaterError: the current password is wrong, or the new one is shorter than MIN_PASSWORD_CHARS, longer than
            MAX_PASSWORD_CHARS, or the same as the current one.
    """
    if check_password(graph, name, current) is None:
        raise RaterError("the current password is not right")
    if not MIN_PASSWORD_CHARS <= len(new) <= MAX_PASSWORD_CHARS:
        raise RaterError(f"the new password needs {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters")
    if new == current:
        raise RaterError("the new password must differ from the one-time password")
    if not set_password(graph, name, password_hash=_HASHER.hash(new), now=_now()):
        raise RaterError(f"reviewer {name!r} is not active")
    log.info("reviewer %s set a new password", name)
