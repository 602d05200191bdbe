"""Browser sessions (登录会话) kept in the store, so every server process shares them.

Signing in at ``/login`` creates a session: a random id (256 bits) goes into the
browser's cookie and only its SHA-256 into the ``sessions`` table, so a copy of
the database gives no usable cookie. A session is tied to the key it was opened
with and to that key's role at the time; it ends

* when the browser signs out (:func:`end_session`),
* after ``idle`` seconds without use, or ``absolute`` seconds after sign-in,
* when its key is revoked, rotated or expires (:func:`gridmap.db.keys.revoke_key`,
  :func:`gridmap.db.keys.rotate_key`), or its role no longer matches.

An ended session is never revived: a stolen cookie replayed after sign-out gets
nothing. ``last_seen_at`` is written at most once a minute per session, so a
page load is one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gridmap.db.keys import _PUBLIC, ApiKey, ApiKeyRecord, _record
from gridmap.db.models import SessionRow, table, utcnow
from gridmap.db.session import Store, transaction

__all__ = [
    "SessionInfo",
    "create_session",
    "resolve_session",
    "end_session",
    "SEEN_EVERY_S",
]

#: ``last_seen_at`` is written at most this often per session (seconds).
SEEN_EVERY_S = 60.0

_S = table(SessionRow)
_K = table(ApiKey)


@dataclass(frozen=True)
class SessionInfo:
    """A live session and the key it belongs to.

    Attributes
    ----------
    key : ApiKeyRecord
        The key the browser signed in with.
    role : str
        The role the session was opened with (equal to the key's).
    created_at, expires_at : datetime
        Sign-in time and the absolute end.
    """

    key: ApiKeyRecord
    role: str
    created_at: datetime
    expires_at: datetime


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def create_session(
    target: Store | Any, key: ApiKeyRecord, *, absolute_s: float, now: datetime | None = None
) -> str:
    """Open a session for ``key``; return its random id (the cookie's value, shown once).

    Parameters
    ----------
    target : Store or Session
        The store.
    key : ApiKeyRecord
        A verified, active key.
    absolute_s : float
        Seconds after which the session ends whatever its use.

    Examples
    --------
    >>> from gridmap.db.keys import create_key
    >>> store = Store.from_url("sqlite://")
    >>> rec, _ = create_key(store, name="desk", role="viewer", author="admin")
    >>> sid = create_session(store, rec, absolute_s=3600)
    >>> resolve_session(store, sid, idle_s=600).key.name
    'desk'
    >>> end_session(store, sid), resolve_session(store, sid, idle_s=600)
    (True, None)
    """
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    with transaction(target, write=True) as s:
        s.execute(
            _S.insert().values(
                id=_digest(session_id),
                key_id=key.id,
                role=key.role,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=absolute_s),
            )
        )
    return session_id


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def resolve_session(
    target: Store | Any, session_id: str, *, idle_s: float, now: datetime | None = None
) -> SessionInfo | None:
    """Return the live session with this id, or ``None`` (unknown, ended, expired).

    An idle or expired session, or one whose key is no longer active or has
    another role, is ended on the way (``ended_why`` says which).
    """
    if not session_id or len(session_id) > 256:
        return None
    now = now or utcnow()
    digest = _digest(session_id)
    with transaction(target) as s:
        row = s.execute(
            sa.select(_S, *[c.label(f"k_{c.name}") for c in _PUBLIC])
            .join(_K, _K.c.id == _S.c.key_id)
            .where(_S.c.id == digest)
        ).first()
    if row is None:
        return None
    m = row._mapping
    if m["ended_at"] is not None:
        return None
    key = _record(_KeyRow({c.name: m[f"k_{c.name}"] for c in _PUBLIC}))
    why = None
    if _aware(m["expires_at"]) <= now:
        why = "expired"
    elif (now - _aware(m["last_seen_at"])).total_seconds() > idle_s:
        why = "idle"
    elif not key.active:
        why = "key expired" if key.revoked_at is None else "key revoked"
    elif key.role != m["role"]:
        why = "role changed"
    if why is not None:
        _end(target, digest, why, now)
        return None
    if (now - _aware(m["last_seen_at"])).total_seconds() >= SEEN_EVERY_S:
        with transaction(target, write=True) as s:
            s.execute(
                sa.update(_S)
                .where(_S.c.id == digest)
                .where(_S.c.ended_at.is_(None))
                .values(last_seen_at=now)
            )
    return SessionInfo(
        key=key,
        role=m["role"],
        created_at=_aware(m["created_at"]),
        expires_at=_aware(m["expires_at"]),
    )


def end_session(target: Store | Any, session_id: str, *, why: str = "signed out") -> bool:
    """End a session (sign-out); return whether a live session was ended."""
    if not session_id or len(session_id) > 256:
        return False
    return _end(target, _digest(session_id), why, utcnow())


def _end(target: Store | Any, digest: str, why: str, now: datetime) -> bool:
    with transaction(target, write=True) as s:
        result = s.execute(
            sa.update(_S)
            .where(_S.c.id == digest)
            .where(_S.c.ended_at.is_(None))
            .values(ended_at=now, ended_why=why)
        )
    return bool(getattr(result, "rowcount", 0))


class _KeyRow:
    """Adapter giving :func:`gridmap.db.keys._record` a ``_mapping``."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping
