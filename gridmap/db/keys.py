"""API keys of the HTTP service: roles, creation, verification and revocation.

A key is a random token ``gm_<prefix>_<secret>``; only its SHA-256 digest is
stored (with the public ``prefix``, which identifies the key in lists and in the
audit log). The token is shown once, when the key is created. Every creation and
revocation writes an audit row in the same transaction.

Roles are ordered ``viewer < dispatcher < planner < admin``: viewers see grids
and codes, dispatchers also staff contacts and residents near an incident,
planners edit plans and admins manage keys. ``staff`` keys (grid workers and
chiefs, community, sub-district and department staff) rank with viewers on the
service's other routes and work cases of their own org unit.

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
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.audit import write_audit
from gridmap.db.bulk import jsonable
from gridmap.db.models import Base, table, utcnow
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError, NotFoundError

__all__ = [
    "ROLES",
    "KEY_ROLES",
    "SCOPE_LEVELS",
    "TOKEN_PREFIX",
    "parse_scope",
    "case_role",
    "ApiKey",
    "ApiKeyRecord",
    "role_rank",
    "hash_token",
    "create_key",
    "get_key",
    "list_keys",
    "revoke_key",
    "verify_key",
]

#: Roles, lowest first; a role may do everything the roles before it may.
ROLES: tuple[str, ...] = ("viewer", "dispatcher", "planner", "admin")
#: Every role a key may have: the ranked roles and ``staff`` (ranks with viewer; needs a scope).
KEY_ROLES: tuple[str, ...] = ("viewer", "staff", "dispatcher", "planner", "admin")
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

_TS = sa.DateTime(timezone=True)


class ApiKey(Base):
    """An API key: public prefix, SHA-256 of the token, name and role (never the token)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('viewer', 'staff', 'dispatcher', 'planner', 'admin')", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    scope_level: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    scope_code: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)


_K = table(ApiKey)


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

    @property
    def scope(self) -> str | None:
        """``"level:code"``, or None for an unbound key."""
        return f"{self.scope_level}:{self.scope_code}" if self.scope_level else None

    @property
    def active(self) -> bool:
        """Whether the key is not revoked."""
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-compatible values."""
        return jsonable({**asdict(self), "active": self.active})


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    if role == "staff":
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
    if role == "viewer":
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


def create_key(
    target: Store | Any, *, name: str, role: str, author: str, scope: str | None = None
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
    if role == "admin" and level is not None:
        raise InputError("an admin key cannot be scoped; create a dispatcher or staff key")
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
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
        row = s.execute(sa.select(*_PUBLIC).where(_K.c.id == int(key_id))).first()
    if row is None:
        raise NotFoundError(f"no API key with id {key_id}; list the keys with GET /keys")
    return _record(row)


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
        row = s.execute(sa.select(*_PUBLIC).where(_K.c.id == int(key_id))).first()
        if row is None:
            raise NotFoundError(f"no API key with id {key_id}; list the keys with GET /keys")
        rec = _record(row)
        if rec.revoked_at is not None:
            return rec
        s.execute(sa.update(_K).where(_K.c.id == int(key_id)).values(revoked_at=utcnow()))
        write_audit(
            s,
            actor=author,
            action="revoke",
            entity="api_key",
            entity_id=key_id,
            before={"prefix": rec.prefix, "role": rec.role, "active": True},
            after={"prefix": rec.prefix, "role": rec.role, "active": False},
        )
        return _record(s.execute(sa.select(*_PUBLIC).where(_K.c.id == int(key_id))).one())


def verify_key(target: Store | Any, token: str) -> ApiKeyRecord | None:
    """Return the active key matching ``token``, or ``None`` (unknown, malformed or revoked).

    The digest is compared in constant time.

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
    return rec if rec.active else None
