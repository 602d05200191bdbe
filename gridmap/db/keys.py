"""API keys of the HTTP service: roles, creation, verification and revocation.

A key is a random token ``gm_<prefix>_<secret>``; only its SHA-256 digest is
stored (with the public ``prefix``, which identifies the key in lists and in the
audit log). The token is shown once, when the key is created. Every creation and
revocation writes an audit row in the same transaction.

Roles are ordered ``viewer < dispatcher < planner < admin``: viewers see grids
and codes, dispatchers also staff contacts and residents near an incident,
planners edit plans and admins manage keys. ``staff`` keys (grid workers and
chiefs, community, sub-district and department staff) rank with viewers on the
service's other routes and work cases of their own org unit. ``auditor`` keys
(a data-protection officer, 数据保护负责人) rank with viewers and may also read
the audit log (``GET /audit``), as admins may.

A key may expire (``expires_at``); the time it was last used is kept to the
minute (``last_used_at``, written at most once a minute per key, so checking a
key stays a read); :func:`rotate_key` gives a key a new secret (same id, name,
role and scope), ending the old secret and the key's browser sessions, as
:func:`revoke_key` does.

Scopes
------
A key may be bound to an org unit (``scope_level``, ``scope_code``): ``grid``,
``community``, ``subdistrict`` or ``department`` and the unit's code
(``gridmap keys create --role staff --scope grid:320104001001001``). A ``staff``
key must have one. For cases (:mod:`gridmap.cases.states`) a key acts as

===========================  =========================================
key                          case role (``gridmap.cases.Actor``)
===========================  =========================================
staff + grid:<code>          ``grid_worker`` of that grid
staff + community:<id>       ``community`` (社区工作人员)
staff + subdistrict:<code>   ``subdistrict`` (街道)
staff + department:<code>    ``department`` (职能部门)
viewer [+ scope]             ``viewer`` (reads; limited to its unit if scoped)
dispatcher, planner          ``dispatcher`` (or the unit's role when scoped)
admin                        ``admin``
===========================  =========================================
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.db.audit import write_audit
from gridmap.db.bulk import jsonable
from gridmap.db.models import ApiKey, SessionRow, table, utcnow
from gridmap.db.session import Store, transaction
from gridmap.errors import ConflictError, InputError, NotFoundError

__all__ = [
    "ROLES",
    "KEY_ROLES",
    "AUDIT_ROLES",
    "SCOPE_LEVELS",
    "TOKEN_PREFIX",
    "parse_scope",
    "parse_expiry",
    "case_role",
    "ApiKey",
    "ApiKeyRecord",
    "role_rank",
    "hash_token",
    "create_key",
    "get_key",
    "list_keys",
    "revoke_key",
    "rotate_key",
    "verify_key",
    "touch_key",
]

#: Roles, lowest first; a role may do everything the roles before it may.
ROLES: tuple[str, ...] = ("viewer", "dispatcher", "planner", "admin")
#: Every role a key may have: the ranked roles and ``staff`` (ranks with viewer; needs a scope).
KEY_ROLES: tuple[str, ...] = ("viewer", "staff", "auditor", "dispatcher", "planner", "admin")
#: Roles that may read the audit log.
AUDIT_ROLES: tuple[str, ...] = ("auditor", "admin")
#: ``last_used_at`` is written at most this often per key (seconds).
LAST_USED_EVERY_S = 60.0
#: Org units a key may be bound to (as :data:`gridmap.cases.UNIT_KINDS`).
SCOPE_LEVELS: tuple[str, ...] = ("grid", "community", "subdistrict", "department")
_CASE_ROLE = {
    "grid": "grid_worker",
    "community": "community",
    "subdistrict": "subdistrict",
    "department": "department",
}

#: Every token starts with this marker (easy to spot in leaked-secret scans).
TOKEN_PREFIX = "gm_"

_K = table(ApiKey)
_S = table(SessionRow)
_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored key's public data (never the token nor its hash).

    Attributes
    ----------
    id : int
        Key id.
    prefix : str
        Public part of the token (``gm_<prefix>_…``).
    name : str
        Who or what uses the key.
    role : str
        ``viewer``, ``dispatcher``, ``planner`` or ``admin``.
    created_by : str
        Who created it.
    created_at : datetime
        When (UTC).
    revoked_at : datetime or None
        When it was revoked.
    scope_level, scope_code : str or None
        The org unit the key is bound to (``grid``/``320104001001001`` …).
    expires_at : datetime or None
        When the key stops working (None: never).
    last_used_at : datetime or None
        When it was last used, to the minute.
    rotated_at : datetime or None
        When its secret was last replaced.
    """

    id: int
    prefix: str
    name: str
    role: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None
    scope_level: str | None = None
    scope_code: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_at: datetime | None = None

    @property
    def scope(self) -> str | None:
        """``"level:code"``, or None for an unbound key."""
        return f"{self.scope_level}:{self.scope_code}" if self.scope_level else None

    @property
    def expired(self) -> bool:
        """Whether the key's expiry date has passed."""
        return self.expires_at is not None and self.expires_at <= utcnow()

    @property
    def active(self) -> bool:
        """Whether the key works: not revoked and not expired."""
        return self.revoked_at is None and not self.expired

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-compatible values."""
        return jsonable({**asdict(self), "active": self.active})


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _key_record(s: Session, key_id: int) -> ApiKeyRecord:
    """Read key ``key_id`` in session ``s``; :class:`NotFoundError` when there is none."""
    row = s.execute(sa.select(*_PUBLIC).where(_K.c.id == int(key_id))).first()
    if row is None:
        raise NotFoundError(f"no API key with id {key_id}; list the keys with GET /keys")
    return _record(row)


def _record(row: Any) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(
        id=int(m["id"]),
        prefix=m["prefix"],
        name=m["name"],
        role=m["role"],
        created_by=m["created_by"],
        created_at=_utc(m["created_at"]),  # type: ignore[arg-type]
        revoked_at=_utc(m["revoked_at"]),
        scope_level=m.get("scope_level"),
        scope_code=m.get("scope_code"),
        expires_at=_utc(m.get("expires_at")),
        last_used_at=_utc(m.get("last_used_at")),
        rotated_at=_utc(m.get("rotated_at")),
    )


_PUBLIC = [c for c in _K.c if c.name != "key_hash"]


def role_rank(role: str) -> int:
    """Return the rank of a role (viewer 0 … admin 3).

    Raises
    ------
    InputError
        For an unknown role.

    Examples
    --------
    >>> role_rank("viewer") < role_rank("dispatcher") < role_rank("admin")
    True
    """
    if role in ("staff", "auditor"):
        return 0
    try:
        return ROLES.index(str(role))
    except ValueError:
        raise InputError(f"unknown role {role!r}; use one of {', '.join(KEY_ROLES)}") from None


def parse_scope(scope: str | None) -> tuple[str | None, str | None]:
    """Parse ``"level:code"`` (``grid:320104001001001``) into ``(level, code)``.

    Raises
    ------
    InputError
        Unknown level or missing code.

    Examples
    --------
    >>> parse_scope("grid:320104001001001"), parse_scope(None)
    (('grid', '320104001001001'), (None, None))
    """
    if scope is None or not str(scope).strip():
        return None, None
    level, sep, code = str(scope).strip().partition(":")
    level = level.strip().lower()
    if not sep or level not in SCOPE_LEVELS or not code.strip():
        raise InputError(
            f"scope {scope!r} is not LEVEL:CODE with LEVEL one of {', '.join(SCOPE_LEVELS)}; "
            "e.g. --scope grid:320104001001001"
        )
    return level, code.strip()


def case_role(role: str, scope_level: str | None) -> str:
    """Return the role a key acts with on cases (see the module docstring).

    Examples
    --------
    >>> case_role("staff", "grid"), case_role("dispatcher", None), case_role("viewer", "grid")
    ('grid_worker', 'dispatcher', 'viewer')
    """
    if role == "admin":
        return "admin"
    if role in ("viewer", "auditor"):
        return "viewer"
    if scope_level is not None:
        return _CASE_ROLE[scope_level]
    if role == "staff":
        raise InputError("a staff key must be bound to an org unit (scope)")
    return "dispatcher"


def hash_token(token: str) -> str:
    """Return the hex SHA-256 digest stored for a token.

    Examples
    --------
    >>> len(hash_token("gm_abcd1234_secret"))
    64
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _split(token: str) -> str | None:
    """Return the prefix of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not prefix or not secret or len(prefix) > 16:
        return None
    return prefix


def parse_expiry(value: str | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """Return the expiry of a key from a date, a date-time or a number of days.

    A date means the end of that day, Beijing time; a date-time without an offset
    is Beijing time; ``"90d"`` is 90 days from now. The result must lie ahead.

    Raises
    ------
    InputError
        Unreadable or past.

    Examples
    --------
    >>> parse_expiry("2099-06-30").isoformat()
    '2099-06-30T23:59:59+08:00'
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> parse_expiry("90d", now=now).isoformat()
    '2026-04-01T00:00:00+00:00'
    >>> parse_expiry(None) is None
    True
    """
    now = now or utcnow()
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=_BEIJING)
    else:
        text = value.strip()
        try:
            if text.lower().endswith("d") and text[:-1].isdigit():
                when = now + timedelta(days=int(text[:-1]))
            elif len(text) == 10:
                day = datetime.fromisoformat(text)
                when = day.replace(hour=23, minute=59, second=59, tzinfo=_BEIJING)
            else:
                when = datetime.fromisoformat(text)
                when = when if when.tzinfo is not None else when.replace(tzinfo=_BEIJING)
        except ValueError:
            raise InputError(
                f"expiry {value!r} is not a date (2027-06-30), a date-time "
                "(2027-06-30T18:00+08:00) or a number of days (90d)"
            ) from None
    if when <= now:
        raise InputError(f"expiry {when.isoformat()} is in the past; give a later date")
    return when


def create_key(
    target: Store | Any,
    *,
    name: str,
    role: str,
    author: str,
    scope: str | None = None,
    expires_at: str | datetime | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Create an API key; return its record and the token (shown only this once).

    Parameters
    ----------
    target : Store or Session
        The store.
    name : str
        Who or what will use the key (e.g. ``"dispatch desk 3"``).
    role : {"viewer", "staff", "dispatcher", "planner", "admin"}
        What the key may do.
    author : str
        Who creates it (audit log).
    scope : str, optional
        ``"level:code"``: the org unit the key is bound to (required for ``staff``).
    expires_at : str or datetime, optional
        When the key stops working (see :func:`parse_expiry`); never by default.

    Returns
    -------
    tuple
        ``(ApiKeyRecord, token)``.

    Raises
    ------
    InputError
        Unknown role or empty name.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> rec, token = create_key(store, name="desk", role="dispatcher", author="admin")
    >>> token.startswith("gm_" + rec.prefix + "_"), verify_key(store, token).role
    (True, 'dispatcher')
    """
    role_rank(role)
    if not name or not str(name).strip():
        raise InputError("an API key needs a name saying who uses it, e.g. name='dispatch desk'")
    level, code = parse_scope(scope)
    if role == "staff" and level is None:
        raise InputError(
            "a staff key is bound to an org unit; give --scope grid:<grid code> (or "
            "community:<id>, subdistrict:<code>, department:<code>)"
        )
    if role in ("admin", "auditor") and level is not None:
        raise InputError(
            f"an {role} key cannot be scoped; create a dispatcher, viewer or staff key"
        )
    expires = parse_expiry(expires_at)
    expires = None if expires is None else expires.astimezone(UTC)  # SQLite keeps no offset
    prefix, token = _new_token()
    with transaction(target, write=True) as s:
        key_id = s.execute(
            _K.insert()
            .values(
                prefix=prefix,
                key_hash=hash_token(token),
                name=str(name).strip(),
                role=role,
                created_by=author,
                created_at=utcnow(),
                scope_level=level,
                scope_code=code,
                expires_at=expires,
            )
            .returning(_K.c.id)
        ).scalar_one()
        write_audit(
            s,
            actor=author,
            action="create",
            entity="api_key",
            entity_id=key_id,
            after={
                "prefix": prefix,
                "name": str(name).strip(),
                "role": role,
                **({"scope": f"{level}:{code}"} if level else {}),
                **({"expires_at": expires} if expires else {}),
            },
        )
        rec = _record(s.execute(sa.select(*_PUBLIC).where(_K.c.id == key_id)).one())
    return rec, token


def get_key(target: Store | Any, key_id: int) -> ApiKeyRecord:
    """Return a key's record.

    Raises
    ------
    NotFoundError
        Unknown ``key_id``.
    """
    with transaction(target) as s:
        return _key_record(s, key_id)


def list_keys(target: Store | Any, *, include_revoked: bool = True) -> list[ApiKeyRecord]:
    """Return the keys, oldest first.

    Examples
    --------
    >>> list_keys(Store.from_url("sqlite://"))
    []
    """
    q = sa.select(*_PUBLIC).order_by(_K.c.id)
    if not include_revoked:
        q = q.where(_K.c.revoked_at.is_(None))
    with transaction(target) as s:
        return [_record(r) for r in s.execute(q)]


def revoke_key(target: Store | Any, key_id: int, *, author: str) -> ApiKeyRecord:
    """Revoke a key (idempotent); the record stays for the audit trail.

    Raises
    ------
    NotFoundError
        Unknown ``key_id``.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> rec, token = create_key(store, name="old", role="viewer", author="admin")
    >>> revoke_key(store, rec.id, author="admin").active, verify_key(store, token)
    (False, None)
    """
    with transaction(target, write=True) as s:
        rec = _key_record(s, key_id)
        if rec.revoked_at is not None:
            return rec
        s.execute(sa.update(_K).where(_K.c.id == int(key_id)).values(revoked_at=utcnow()))
        ended = _end_sessions(s, int(key_id), "key revoked")
        write_audit(
            s,
            actor=author,
            action="revoke",
            entity="api_key",
            entity_id=key_id,
            before={"prefix": rec.prefix, "role": rec.role, "active": True},
            after={
                "prefix": rec.prefix,
                "role": rec.role,
                "active": False,
                "sessions_ended": ended,
            },
        )
        return _key_record(s, key_id)


def rotate_key(target: Store | Any, key_id: int, *, author: str) -> tuple[ApiKeyRecord, str]:
    """Give a key a new secret; the old token and the key's browser sessions end at once.

    The key keeps its id, name, role, scope and expiry (and so its history in the
    audit log); only the token changes. Returns ``(record, new token)``; the token
    is shown this once.

    Raises
    ------
    NotFoundError
        Unknown ``key_id``.
    ConflictError
        The key is revoked (create a new one instead).

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> rec, old = create_key(store, name="desk", role="viewer", author="admin")
    >>> new_rec, new = rotate_key(store, rec.id, author="admin")
    >>> verify_key(store, old), verify_key(store, new).id == rec.id
    (None, True)
    """
    with transaction(target, write=True) as s:
        rec = _key_record(s, key_id)
        if rec.revoked_at is not None:
            raise ConflictError(
                f"key {key_id} is revoked; a revoked key is not rotated, create a new one "
                "(gridmap keys create)"
            )
        prefix, token = _new_token()
        s.execute(
            sa.update(_K)
            .where(_K.c.id == int(key_id))
            .values(prefix=prefix, key_hash=hash_token(token), rotated_at=utcnow())
        )
        ended = _end_sessions(s, int(key_id), "key rotated")
        write_audit(
            s,
            actor=author,
            action="rotate",
            entity="api_key",
            entity_id=key_id,
            before={"prefix": rec.prefix, "role": rec.role},
            after={"prefix": prefix, "role": rec.role, "sessions_ended": ended},
        )
        new = _key_record(s, key_id)
    return new, token


def touch_key(target: Store | Any, key_id: int, *, now: datetime | None = None) -> bool:
    """Record that a key was used now, unless that was recorded less than a minute ago.

    Returns whether a row was written (at most once a minute per key, whatever
    the number of server processes).
    """
    now = now or utcnow()
    stale = now - timedelta(seconds=LAST_USED_EVERY_S)
    with transaction(target, write=True) as s:
        result = s.execute(
            sa.update(_K)
            .where(_K.c.id == int(key_id))
            .where(sa.or_(_K.c.last_used_at.is_(None), _K.c.last_used_at < stale))
            .values(last_used_at=now)
        )
    return bool(getattr(result, "rowcount", 0))


def _new_token() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def _end_sessions(s: Any, key_id: int, why: str) -> int:
    """End the open browser sessions of a key (in the caller's transaction)."""
    result = s.execute(
        sa.update(_S)
        .where(_S.c.key_id == key_id)
        .where(_S.c.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_why=why)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def verify_key(target: Store | Any, token: str, *, touch: bool = True) -> ApiKeyRecord | None:
    """Return the active key matching ``token``, or ``None`` (unknown, malformed, revoked, expired).

    The digest is compared in constant time. With ``touch``, a key's
    ``last_used_at`` is brought up to date when it is more than a minute old.

    Examples
    --------
    >>> verify_key(Store.from_url("sqlite://"), "gm_nothere_x") is None
    True
    """
    prefix = _split(str(token))
    if prefix is None:
        return None
    with transaction(target) as s:
        row = s.execute(sa.select(*_PUBLIC, _K.c.key_hash).where(_K.c.prefix == prefix)).first()
    if row is None or not hmac.compare_digest(row._mapping["key_hash"], hash_token(token)):
        return None
    rec = _record(row)
    if not rec.active:
        return None
    now = utcnow()
    if touch and (
        rec.last_used_at is None or (now - rec.last_used_at).total_seconds() >= LAST_USED_EVERY_S
    ):
        touch_key(target, rec.id, now=now)
    return rec
