"""Rate limits (限流) kept in the store, so every server process counts the same events.

A *bucket* names what is counted: ``auth-fail:addr:10.1.2.3`` (wrong keys from an
address), ``auth-fail:prefix:3f2a9c1b`` (wrong secrets for a key prefix),
``batch:key:12`` (batch calls of key 12). Counters use fixed windows: the first
event of a window sets ``window_start``; events within ``window_s`` add one;
the event that goes over ``per_window`` is refused and, with a ``lockout_s``,
locks the bucket for that long (every event meanwhile is refused, and not
counted). One ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per event, on SQLite
and PostgreSQL alike, so two processes never lose a count. :func:`unlock` lifts a
lockout by hand (``gridmap keys unlock``), with an audit row.

Examples
--------
>>> store = Store.from_url("sqlite://")
>>> rule = Limit(per_window=2, window_s=60, lockout_s=300)
>>> [hit(store, "auth-fail:addr:10.0.0.9", rule) for _ in range(3)]
[0.0, 0.0, 300.0]
>>> blocked(store, "auth-fail:addr:10.0.0.9") > 299
True
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gridmap.db.audit import write_audit
from gridmap.db.models import RateLimitRow, table, utcnow
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError

__all__ = ["Limit", "hit", "blocked", "clear", "prune", "unlock", "AUTH_FAIL"]

_R = table(RateLimitRow)

#: Bucket name prefix of failed authentications (``auth-fail:addr:…``, ``auth-fail:prefix:…``).
AUTH_FAIL = "auth-fail:"


@dataclass(frozen=True)
class Limit:
    """How many events a bucket may count per window, and the lockout after that.

    Attributes
    ----------
    per_window : int
        Events allowed per window (the next one is refused).
    window_s : float
        Window length in seconds.
    lockout_s : float, default 0
        Seconds a bucket stays locked after going over (0: until the window ends).
    """

    per_window: int
    window_s: float
    lockout_s: float = 0.0


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _insert(s: Any) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def blocked(target: Store | Any, bucket: str, *, now: datetime | None = None) -> float:
    """Return the seconds a bucket stays locked (0.0 when it is not locked)."""
    now = now or utcnow()
    with transaction(target) as s:
        until = s.execute(sa.select(_R.c.locked_until).where(_R.c.bucket == bucket)).scalar()
    until = _aware(until)
    return max(0.0, (until - now).total_seconds()) if until is not None else 0.0


def hit(target: Store | Any, bucket: str, limit: Limit, *, now: datetime | None = None) -> float:
    """Count one event; return 0.0 if it is allowed, else the seconds to wait (Retry-After).

    A locked bucket refuses the event without counting it.
    """
    now = now or utcnow()
    ts = _R.c.window_start.type
    at = sa.bindparam("now_", now, type_=ts)
    stale = _R.c.window_start <= sa.bindparam("cut_", now - timedelta(seconds=limit.window_s), ts)
    with transaction(target, write=True) as s:
        locked = _aware(
            s.execute(sa.select(_R.c.locked_until).where(_R.c.bucket == bucket)).scalar()
        )
        if locked is not None and locked > now:
            return (locked - now).total_seconds()
        insert = _insert(s)
        stmt = insert(_R).values(bucket=bucket, window_start=now, count=1, locked_until=None)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_R.c.bucket],
            set_={
                "count": sa.case((stale, 1), else_=_R.c.count + 1),
                "window_start": sa.case((stale, at), else_=_R.c.window_start),
                "locked_until": None,
            },
        ).returning(_R.c.count, _R.c.window_start)
        count, start = s.execute(stmt).one()
        if count <= limit.per_window:
            wait = 0.0
        elif limit.lockout_s > 0:
            wait = float(limit.lockout_s)
            s.execute(
                sa.update(_R)
                .where(_R.c.bucket == bucket)
                .values(locked_until=now + timedelta(seconds=wait))
            )
        else:
            began = _aware(start) or now
            wait = max(1.0, (began + timedelta(seconds=limit.window_s) - now).total_seconds())
    if secrets.randbelow(200) == 0:  # now and then, forget old buckets
        prune(target, now=now)
    return wait


def clear(target: Store | Any, bucket: str) -> None:
    """Forget a bucket (its count and lockout)."""
    with transaction(target, write=True) as s:
        s.execute(sa.delete(_R).where(_R.c.bucket == bucket))


def unlock(
    target: Store | Any,
    *,
    author: str,
    prefix: str | None = None,
    address: str | None = None,
    everything: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Lift failed-authentication lockouts and forget their counts, with an audit row.

    Exactly one of ``prefix`` (a key prefix, as ``gridmap keys list`` shows it, or
    a whole ``gm_…`` token), ``address`` (a client address) or ``everything``
    (every address and prefix) says what to unlock. Batch quotas are not touched.
    The audit row (action ``unlock``, entity ``api_key``, so ``gridmap audit --kind
    keys`` lists it) is written in the same transaction, only when a counter was
    cleared.

    Returns
    -------
    list of dict
        The cleared buckets: ``bucket``, ``count`` (failures in its window) and
        ``locked_s`` (seconds of lockout that were left; 0 when not locked).

    Raises
    ------
    InputError
        None or several of ``prefix``, ``address`` and ``everything``, or an empty one.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> rule = Limit(per_window=1, window_s=60, lockout_s=300)
    >>> [hit(store, "auth-fail:prefix:3f2a9c1b", rule) for _ in range(2)]
    [0.0, 300.0]
    >>> [c["bucket"] for c in unlock(store, prefix="3f2a9c1b", author="admin")]
    ['auth-fail:prefix:3f2a9c1b']
    >>> blocked(store, "auth-fail:prefix:3f2a9c1b"), unlock(store, everything=True, author="admin")
    (0.0, [])
    """
    given = [x for x in (prefix, address) if x is not None] + ([True] if everything else [])
    if len(given) != 1:
        raise InputError(
            "say what to unlock: exactly one of a key prefix (--prefix, see gridmap keys list), "
            "a client address (--client) or --all"
        )
    if prefix is not None:
        prefix = prefix.strip()
        if prefix.startswith("gm_"):  # a whole token pasted: its prefix
            prefix = prefix[3:].partition("_")[0]
        if not prefix or len(prefix) > 16 or not prefix.isalnum():
            raise InputError(
                f"{prefix!r} is not a key prefix; give the 8 characters gridmap keys list shows "
                "in its prefix column (e.g. 3f2a9c1b)"
            )
        what, where = f"prefix {prefix}", _R.c.bucket == f"{AUTH_FAIL}prefix:{prefix}"
    elif address is not None:
        address = address.strip()
        if not address or len(address) > 100:
            raise InputError(f"{address!r} is not a client address; give one, e.g. 203.0.113.9")
        what, where = f"address {address}", _R.c.bucket == f"{AUTH_FAIL}addr:{address}"
    else:
        what, where = "all", _R.c.bucket.like(f"{AUTH_FAIL}%")
    now = now or utcnow()
    with transaction(target, write=True) as s:
        rows = s.execute(
            sa.select(_R.c.bucket, _R.c.count, _R.c.locked_until).where(where).order_by(_R.c.bucket)
        ).all()
        if not rows:
            return []
        s.execute(sa.delete(_R).where(_R.c.bucket.in_([r[0] for r in rows])))
        cleared: list[dict[str, Any]] = []
        for bucket, count, locked_until in rows:
            until = _aware(locked_until)
            left = 0.0 if until is None else max(0.0, (until - now).total_seconds())
            cleared.append({"bucket": bucket, "count": int(count), "locked_s": round(left, 1)})
        write_audit(
            s,
            actor=author,
            action="unlock",
            entity="api_key",
            entity_id=what,
            before={"buckets": cleared},
            after={"cleared": len(cleared)},
        )
    return cleared


def prune(target: Store | Any, *, now: datetime | None = None, older_than_s: float = 86400) -> int:
    """Delete buckets idle for ``older_than_s`` seconds and not locked; return how many."""
    now = now or utcnow()
    with transaction(target, write=True) as s:
        result = s.execute(
            sa.delete(_R)
            .where(_R.c.window_start < now - timedelta(seconds=older_than_s))
            .where(sa.or_(_R.c.locked_until.is_(None), _R.c.locked_until < now))
        )
    return int(getattr(result, "rowcount", 0) or 0)
