"""Authentication: API keys, browser sessions, and the rate limits around them.

A client sends its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
Keys are checked against the store (:func:`gridmap.db.keys.verify_key`: SHA-256
digest, constant-time comparison) and the answer is cached for a few seconds so
that a busy dispatch desk does not hit the database on every request; revoking
a key through the API clears the cache at once (other processes see it within
``ttl`` seconds).

A browser signed in at ``/login`` sends a session cookie instead
(:data:`SESSION_COOKIE`: a random id, see :mod:`gridmap.db.sessions`); it is read
for ``GET``/``HEAD`` only and looked up in the store on every request, so a
sign-out or a revoked key ends it in every server process at once.

Rate limits (:class:`Authenticator`, :class:`BatchQuotaMiddleware`) keep their
counters in the store (:mod:`gridmap.db.ratelimit`): wrong keys per client
address and per key prefix (``429`` with ``Retry-After``, then a lockout), and
batch calls per key. A key already verified and cached never touches them, so
the hot path (``GET /locate`` with a valid key) does no more work than before.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gridmap.db import Store
from gridmap.db.keys import ROLES, _split, hash_token, role_rank, verify_key

__all__ = [
    "Principal",
    "KeyCache",
    "Authenticator",
    "BatchQuotaMiddleware",
    "token_from_request",
    "session_from_request",
    "client_address",
    "is_https",
    "ROLES",
    "MISS",
    "SESSION_COOKIE",
    "CSRF_COOKIE",
    "BATCH_PATHS",
]

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


#: Cookie holding the session id of a browser signed in at ``/login`` (read-only requests).
SESSION_COOKIE = "gridmap_session"
#: Cookie holding the sign-in form's anti-forgery token (double submit, ``/login`` only).
CSRF_COOKIE = "gridmap_csrf"
#: Routes whose calls per key are limited (``GRIDMAP_BATCH_CALLS_PER_MIN``).
BATCH_PATHS: frozenset[str] = frozenset({"/locate/batch", "/cases/import"})


def token_from_request(conn: HTTPConnection) -> str | None:
    """Return the API key sent with a request.

    ``X-API-Key`` or ``Authorization: Bearer``. For ``GET`` and ``HEAD`` only —
    reads, never a request that changes something — also the ways of clients
    that cannot set a header: HTTP Basic authentication with the key as the
    password and any user name (QGIS's own "Basic" authentication) and an
    ``api_key=`` query parameter (kept out of the access log). A browser's
    session cookie is not a key: see :func:`session_from_request`.

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
    return None


def session_from_request(conn: HTTPConnection) -> str | None:
    """Return the session id of a browser's cookie, for ``GET`` and ``HEAD`` only.

    Examples
    --------
    >>> from starlette.requests import Request
    >>> scope = {"type": "http", "method": "GET", "query_string": b"",
    ...          "headers": [(b"cookie", b"gridmap_session=abc")]}
    >>> posted = Request({**scope, "method": "POST"})
    >>> session_from_request(Request(scope)), session_from_request(posted)
    ('abc', None)
    """
    if conn.scope.get("method") not in ("GET", "HEAD"):
        return None
    kept = conn.cookies.get(SESSION_COOKIE)
    return kept.strip() if kept and kept.strip() else None


@lru_cache(maxsize=64)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t.strip(), strict=False) for t in trusted if t.strip())


def _trusted(host: str | None, trusted: tuple[str, ...]) -> bool:
    if not host or not trusted:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in _networks(trusted))


def client_address(conn: HTTPConnection, trusted: tuple[str, ...] = ()) -> str:
    """Return the client's address: the peer, or behind a trusted proxy its ``X-Forwarded-For``.

    The right-most address of ``X-Forwarded-For`` that is not itself a trusted
    proxy is the client (the left part can be forged by the client).

    Examples
    --------
    >>> from starlette.requests import Request
    >>> scope = {"type": "http", "method": "GET", "query_string": b"", "client": ("10.0.0.2", 5),
    ...          "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")]}
    >>> client_address(Request(scope)), client_address(Request(scope), ("10.0.0.0/8",))
    ('10.0.0.2', '203.0.113.9')
    """
    peer = conn.client.host if conn.client else "unknown"
    if not _trusted(peer, trusted):
        return peer
    forwarded = conn.headers.get("x-forwarded-for", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _trusted(hop, trusted):
            return hop
    return peer


def is_https(conn: HTTPConnection, trusted: tuple[str, ...] = ()) -> bool:
    """Tell whether the browser talks HTTPS (the scheme, or a trusted proxy's X-Forwarded-Proto).

    Examples
    --------
    >>> from starlette.requests import Request
    >>> scope = {"type": "http", "method": "GET", "query_string": b"", "scheme": "http",
    ...          "path": "/login", "server": ("testserver", 80), "client": ("127.0.0.1", 5),
    ...          "headers": [(b"x-forwarded-proto", b"https")]}
    >>> is_https(Request(scope)), is_https(Request(scope), ("127.0.0.1",))
    (False, True)
    """
    peer = conn.client.host if conn.client else None
    if _trusted(peer, trusted):
        proto = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto:
            return proto == "https"
    return conn.url.scheme == "https"


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


class Authenticator:
    """Who is calling: a cached key (the hot path), a key checked in the store, or a session.

    Wrong keys are counted per client address and per key prefix in the store
    (:mod:`gridmap.db.ratelimit`); over ``auth_failures_per_min`` a minute the
    caller gets ``429`` and is locked out for ``auth_lockout_seconds`` — even a
    right key is refused meanwhile, so guessing gains nothing. A key found valid
    in the cache is answered at once, without touching the counters.

    Parameters
    ----------
    store : Store
        The store (keys, sessions, counters).
    cache : KeyCache
        Verified keys.
    settings : object
        :class:`gridmap.api.settings.Settings` (rate limits, sessions, proxies).
    """

    def __init__(self, store: Store, cache: KeyCache, settings: Any) -> None:
        self.store = store
        self.cache = cache
        self.settings = settings
        self.trusted: tuple[str, ...] = tuple(settings.trusted_proxies)

    def _limit(self) -> Any:
        from gridmap.db.ratelimit import Limit

        s = self.settings
        return Limit(s.auth_failures_per_min, 60.0, s.auth_lockout_seconds)

    def _buckets(self, token: str, address: str) -> list[str]:
        buckets = [f"auth-fail:addr:{address}"]
        prefix = _split(token)
        if prefix is not None:
            buckets.append(f"auth-fail:prefix:{prefix}")
        return buckets

    def locked(self, token: str, address: str) -> float:
        """Seconds the address or the token's key prefix stays locked out (0.0: not locked)."""
        from gridmap.db.ratelimit import blocked

        if not self.settings.rate_limit:
            return 0.0
        return max(blocked(self.store, b) for b in self._buckets(token, address))

    def failed(self, token: str, address: str) -> float:
        """Count a wrong key; return the seconds to wait if that went over the limit."""
        from gridmap.db.ratelimit import hit

        if not self.settings.rate_limit:
            return 0.0
        limit = self._limit()
        return max(hit(self.store, b, limit) for b in self._buckets(token, address))

    def too_many(self, wait: float) -> Exception:
        """Return the 429 error of a locked-out caller."""
        from gridmap.api.errors import TooManyRequestsError

        return TooManyRequestsError(
            f"too many wrong API keys from this address or for this key; wait {wait:.0f} s "
            "and try again. If the key is lost or may have leaked, ask an admin for a new one "
            "(gridmap keys rotate ID)",
            retry_after=wait,
        )

    def check_key(self, token: str, address: str) -> Principal:
        """Return the principal of a key checked against the store (counting failures).

        Raises
        ------
        NotAuthenticatedError
            Unknown, revoked or expired key.
        TooManyRequestsError
            The address or key prefix is locked out, or this failure went over the limit.
        """
        from gridmap.api.errors import NotAuthenticatedError

        wait = self.locked(token, address)
        if wait > 0:
            raise self.too_many(wait)
        principal = self.cache.authenticate(self.store, token)
        if principal is not None:
            return principal
        wait = self.failed(token, address)
        if wait > 0:
            raise self.too_many(wait)
        raise NotAuthenticatedError(
            "the API key is unknown or revoked (or expired); ask an admin for a key (`gridmap keys "
            "create --role viewer`) and send it as `Authorization: Bearer <key>` or "
            "`X-API-Key: <key>`"
        )

    def check_session(self, session_id: str) -> Principal:
        """Return the principal of a live browser session.

        Raises
        ------
        NotAuthenticatedError
            The session is unknown or has ended.
        """
        from gridmap.api.errors import NotAuthenticatedError
        from gridmap.db.sessions import resolve_session

        info = resolve_session(
            self.store, session_id, idle_s=self.settings.session_idle_minutes * 60
        )
        if info is None:
            raise NotAuthenticatedError(
                "your sign-in has ended (signed out, unused for "
                f"{self.settings.session_idle_minutes:g} minutes, expired, or the key was "
                "revoked or rotated); sign in again at /login"
            )
        k = info.key
        return Principal(k.id, k.name, info.role, k.prefix, k.scope_level, k.scope_code)

    async def principal(self, request: Request) -> Principal | None:
        """Return the caller of a request, ``None`` when it sends no key and no session.

        Raises
        ------
        NotAuthenticatedError, TooManyRequestsError
            As :meth:`check_key` and :meth:`check_session`.
        """
        token = token_from_request(request)
        if token is not None:
            cached = self.cache.lookup(token)
            if cached is not MISS and cached is not None:
                return cached
            address = client_address(request, self.trusted)
            return await run_in_threadpool(self.check_key, token, address)
        session_id = session_from_request(request)
        if session_id is None:
            return None
        return await run_in_threadpool(self.check_session, session_id)


class BatchQuotaMiddleware:
    """Limit the calls per key of the batch routes (:data:`BATCH_PATHS`) to ``per_min`` a minute.

    Counted in the store (``batch:key:<id>``), so every server process shares the
    limit; the call over it gets ``429`` with ``Retry-After`` before its body is
    read. Calls without a valid key pass through (the route answers 401).
    """

    def __init__(self, app: ASGIApp, settings: Any) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count a batch call of a valid key; answer 429 over the limit."""
        s = self.settings
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path") not in BATCH_PATHS
            or not s.rate_limit
            or s.batch_calls_per_min <= 0
        ):
            await self.app(scope, receive, send)
            return
        from gridmap.api.errors import problem
        from gridmap.db.ratelimit import Limit, hit

        state = scope["app"].state
        token = token_from_request(Request(scope))
        principal = None
        if token is not None and getattr(state, "store", None) is not None:
            principal = state.key_cache.lookup(token)
            if principal is MISS:
                principal = await run_in_threadpool(
                    state.key_cache.authenticate, state.store, token
                )
        if principal is not None:
            limit = Limit(s.batch_calls_per_min, 60.0)
            bucket = f"batch:key:{principal.key_id}"
            wait = await run_in_threadpool(hit, state.store, bucket, limit)
            if wait > 0:
                seconds = max(1, int(-(-wait // 1)))
                response = problem(
                    429,
                    f"more than {s.batch_calls_per_min} batch calls a minute with key "
                    f"{principal.name!r}; wait {seconds} s, or send more points per call "
                    "(the limit is GRIDMAP_BATCH_CALLS_PER_MIN)",
                    title="Too many requests",
                    type_="urn:gridmap:problem:too-many-requests",
                    instance=scope.get("path"),
                    headers={"Retry-After": str(seconds)},
                    retry_after=seconds,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
