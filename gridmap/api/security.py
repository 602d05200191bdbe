"""API-key authentication: read the key from the request, check it, cache the answer.

A client sends its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
Keys are checked against the store (:func:`gridmap.db.keys.verify_key`: SHA-256
digest, constant-time comparison) and the answer is cached for a few seconds so
that a busy dispatch desk does not hit the database on every request; revoking
a key through the API clears the cache at once (other processes see it within
``ttl`` seconds).
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from gridmap.db import Store
from gridmap.db.keys import ROLES, hash_token, role_rank, verify_key

__all__ = ["Principal", "KeyCache", "token_from_request", "ROLES", "MISS", "SESSION_COOKIE"]

#: What :meth:`KeyCache.lookup` returns for a token it has not seen (recently).
MISS: Any = object()


@dataclass(frozen=True)
class Principal:
    """The caller, as identified by its API key.

    Attributes
    ----------
    key_id : int
        Id of the key.
    name : str
        Name of the key (who uses it).
    role : str
        ``viewer``, ``dispatcher``, ``planner`` or ``admin``.
    prefix : str
        Public prefix of the key.
    scope_level, scope_code : str or None
        The org unit the key is bound to (cases: see :func:`gridmap.db.keys.case_role`).

    Examples
    --------
    >>> p = Principal(1, "desk 3", "dispatcher")
    >>> p.allows("viewer"), p.allows("planner"), p.actor
    (True, False, 'desk 3 (key 1)')
    """

    key_id: int
    name: str
    role: str
    prefix: str = ""
    scope_level: str | None = None
    scope_code: str | None = None

    def allows(self, role: str) -> bool:
        """Whether this caller has ``role`` or a higher one."""
        return role_rank(self.role) >= role_rank(role)

    @property
    def actor(self) -> str:
        """How the caller is named in the audit log."""
        return f"{self.name} (key {self.key_id})"


#: Cookie holding the key of a browser signed in at ``/login`` (read-only requests).
SESSION_COOKIE = "gridmap_key"


def token_from_request(conn: HTTPConnection) -> str | None:
    """Return the API key sent with a request.

    ``X-API-Key`` or ``Authorization: Bearer``. For ``GET`` and ``HEAD`` only —
    reads, never a request that changes something — also the ways of clients
    that cannot set a header: HTTP Basic authentication with the key as the
    password and any user name (QGIS's own "Basic" authentication), an
    ``api_key=`` query parameter (kept out of the access log), and the sign-in
    cookie of a browser (see :mod:`gridmap.api.routes.session`).

    Examples
    --------
    >>> import base64
    >>> from starlette.requests import Request
    >>> basic = base64.b64encode(b"qgis:k3y").decode()
    >>> scope = {"type": "http", "method": "GET", "query_string": b"",
    ...          "headers": [(b"authorization", f"Basic {basic}".encode())]}
    >>> token_from_request(Request(scope))
    'k3y'
    >>> token_from_request(Request({**scope, "method": "POST"})) is None
    True
    """
    key = conn.headers.get("x-api-key")
    if key and key.strip():
        return key.strip()
    auth = conn.headers.get("authorization")
    scheme, _, value = (auth or "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.scope.get("method") not in ("GET", "HEAD"):
        return None
    if scheme.lower() == "basic" and value.strip():
        try:
            user, _, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            return None
        return password.strip() or user.strip() or None
    in_url = conn.query_params.get("api_key")
    if in_url and in_url.strip():
        return in_url.strip()
    kept = conn.cookies.get(SESSION_COOKIE)
    if kept and kept.strip():
        return kept.strip()
    return None


class KeyCache:
    """Verified keys by token digest, kept ``ttl`` seconds.

    Parameters
    ----------
    ttl : float, default 10
        Seconds an answer (valid or not) is reused.
    """

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = float(ttl)
        self._items: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, token: str) -> Any:
        """Return the cached answer for ``token`` (principal or ``None``), else :data:`MISS`."""
        hit = self._items.get(hash_token(token))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return MISS

    def authenticate(self, store: Store, token: str) -> Principal | None:
        """Return the principal of an active key, or ``None``."""
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._items.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        rec = verify_key(store, token)
        principal = (
            None
            if rec is None
            else Principal(rec.id, rec.name, rec.role, rec.prefix, rec.scope_level, rec.scope_code)
        )
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[digest] = (now + self.ttl, principal)
        return principal

    def clear(self) -> None:
        """Forget every cached answer (after a key is revoked)."""
        with self._lock:
            self._items.clear()
