"""Domain exceptions → RFC 7807 ``application/problem+json`` responses, in one place.

=====================================================  ======  =========================
exception                                              status  ``type``
=====================================================  ======  =========================
:class:`NotAuthenticatedError` (no or unknown key)     401     ``…:unauthenticated``
:class:`~gridmap.errors.PermissionDeniedError`         403     ``…:forbidden``
:class:`~gridmap.errors.NotFoundError`                 404     ``…:not-found``
:class:`~gridmap.errors.ConflictError`                 409     ``…:conflict``
:class:`~gridmap.errors.TransitionError`               409     ``…:transition-not-allowed``
:class:`~gridmap.errors.RowsError` (bad table rows)    422     ``…:bad-rows`` (409 if a
                                                               row conflicts)
:class:`PayloadTooLargeError`                          413     ``…:payload-too-large``
:class:`~gridmap.errors.CoordinateError`               400     ``…:bad-coordinate``
:class:`~gridmap.errors.CRSError`                      400     ``…:unknown-crs``
:class:`~gridmap.errors.LayerError`, other InputError  400     ``…:bad-input``
:class:`~gridmap.errors.ValidationError`               422     ``…:validation-failed``
:class:`~gridmap.errors.VisitRulesError`,              422     ``…:bad-visit-rules``,
:class:`~gridmap.errors.VisitRecordError`                      ``…:bad-visit-record``
:class:`~gridmap.errors.InfeasibleError`,
:class:`~gridmap.errors.StaffingError`,
other :class:`~gridmap.errors.PartitionError`          422     ``…:unprocessable``
request schema errors (FastAPI)                        422     ``…:invalid-request``
:class:`~gridmap.errors.StorageError`                  503     ``…:storage-unavailable``
any HTTP error raised by routing (404, 405 …)          same    ``about:blank``
anything else (a bug)                                  500     ``…:internal``
=====================================================  ======  =========================

Rule of thumb: **400** when a value the client sent is wrong (a coordinate, a
CRS, a malformed CSV/GeoJSON), **422** when well-formed input cannot be
processed (validation, infeasible parameters, request schema), never **500**
for client input. Every body has ``type``, ``title``, ``status``, ``detail``
(what is wrong and how to fix it) and ``instance`` (the request path); some add
members (``current_version``, ``errors``, ``limit``). Planning routes answer a
stale ``If-Match`` with 412 themselves.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridmap.errors import (
    ConflictError,
    CoordinateError,
    CRSError,
    GridmapError,
    InputError,
    NotFoundError,
    PartitionError,
    PermissionDeniedError,
    RowsError,
    StaffingError,
    StorageError,
    TransitionError,
    ValidationError,
    VisitRecordError,
    VisitRulesError,
)

__all__ = [
    "PROBLEM_JSON",
    "NotAuthenticatedError",
    "PayloadTooLargeError",
    "TooManyRequestsError",
    "problem",
    "status_for",
    "install_error_handlers",
    "error_response",
    "BodySizeLimitMiddleware",
    "CatchAllMiddleware",
    "PROBLEM_RESPONSES",
    "log_exception",
]

_log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE = "urn:gridmap:problem:"


class NotAuthenticatedError(PermissionDeniedError):
    """No API key, or a key that is unknown or revoked (401)."""


class TooManyRequestsError(GridmapError):
    """Too many failed sign-ins or batch calls: wait ``retry_after`` seconds (429).

    Parameters
    ----------
    message : str
        What was limited and how to go on.
    retry_after : float
        Seconds to wait (the ``Retry-After`` header).
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(-(-retry_after // 1)))


class PayloadTooLargeError(InputError):
    """A request body or a batch larger than the configured limit (413).

    Parameters
    ----------
    message : str
        What is too large and how to fix it.
    limit : int, optional
        The limit (bytes or points).
    """

    def __init__(self, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


# most specific first
_MAP: list[tuple[type[BaseException], int, str, str]] = [
    (NotAuthenticatedError, 401, "unauthenticated", "Not authenticated"),
    (TooManyRequestsError, 429, "too-many-requests", "Too many requests"),
    (PermissionDeniedError, 403, "forbidden", "Forbidden"),
    (NotFoundError, 404, "not-found", "Not found"),
    (ConflictError, 409, "conflict", "Conflict"),
    (TransitionError, 409, "transition-not-allowed", "Action not allowed in this state"),
    (PayloadTooLargeError, 413, "payload-too-large", "Payload too large"),
    (CoordinateError, 400, "bad-coordinate", "Bad coordinate"),
    (CRSError, 400, "unknown-crs", "Unknown or unusable CRS"),
    (ValidationError, 422, "validation-failed", "Validation failed"),
    (RowsError, 422, "bad-rows", "Bad rows"),
    (VisitRulesError, 422, "bad-visit-rules", "Bad visit rules"),
    (VisitRecordError, 422, "bad-visit-record", "Bad visit record"),
    (StaffingError, 422, "unprocessable", "Cannot staff"),
    (PartitionError, 422, "unprocessable", "Cannot partition"),
    (InputError, 400, "bad-input", "Bad input"),
    (StorageError, 503, "storage-unavailable", "Storage unavailable"),
    (GridmapError, 400, "bad-input", "Bad input"),
]

#: OpenAPI ``responses=`` entry documenting the problem bodies.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {
            PROBLEM_JSON: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                    },
                    "required": ["type", "title", "status", "detail"],
                }
            }
        },
    }
    for code, text in (
        (400, "Bad input (coordinates, CRS, file content)"),
        (401, "Missing or invalid API key"),
        (403, "The key's role does not allow this"),
        (404, "Unknown plan, grid or collection"),
        (413, "Body or batch too large"),
        (422, "Invalid request"),
        (429, "Too many wrong keys, or batch calls: wait Retry-After seconds"),
    )
}


def status_for(exc: BaseException) -> tuple[int, str, str]:
    """Return ``(status, type slug, title)`` of a domain exception.

    Examples
    --------
    >>> from gridmap.errors import CoordinateError, NotFoundError
    >>> status_for(NotFoundError("x"))[0], status_for(CoordinateError("x"))[0]
    (404, 400)
    """
    for cls, status, slug, title in _MAP:
        if isinstance(exc, cls):
            return status, slug, title
    return 500, "internal", "Internal server error"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build an RFC 7807 problem response.

    Parameters
    ----------
    status : int
        HTTP status.
    detail : str
        What is wrong and how to fix it.
    title : str, optional
        Short summary (the HTTP phrase by default).
    type_ : str, optional
        Problem type URI (``about:blank`` by default, or ``urn:gridmap:problem:<slug>``).
    instance : str, optional
        The request path.
    headers : dict, optional
        Extra response headers.
    **extra
        Extension members.

    Returns
    -------
    fastapi.responses.JSONResponse
    """
    from http import HTTPStatus

    body: dict[str, Any] = {
        "type": type_ or "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _wants_page(request: Request) -> bool:
    """Whether a browser asked for a map page (it can be sent to the sign-in form)."""
    return (
        request.method in ("GET", "HEAD")
        and request.url.path.startswith("/maps/")
        and "text/html" in request.headers.get("accept", "")
    )


def _domain_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotAuthenticatedError) and _wants_page(request):
        # a browser without a key: to the sign-in form, then back (routes/session.py)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    status, slug, title = status_for(exc)
    extra: dict[str, Any] = {}
    headers = None
    if isinstance(exc, ConflictError):
        extra["current_version"] = exc.current_version
    if isinstance(exc, PayloadTooLargeError):
        extra["limit"] = exc.limit
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(exc.retry_after)}
        extra["retry_after"] = exc.retry_after
    if isinstance(exc, TransitionError):
        extra.update(state=exc.state, action=exc.action, allowed=list(exc.allowed))
    if isinstance(exc, RowsError):
        extra["rows"] = [{"line": line, "error": msg} for line, msg in exc.rows]
        if exc.conflict:
            status, slug, title = 409, "conflict", "Conflict"
    if isinstance(exc, NotAuthenticatedError):
        headers = {
            "WWW-Authenticate": 'Bearer realm="gridmap", Basic realm="gridmap", '
            'ApiKey header="X-API-Key"'
        }
    if isinstance(exc, ValidationError) and exc.report is not None:
        to_dict = getattr(exc.report, "to_dict", None)
        if callable(to_dict):
            try:
                extra["report"] = to_dict()
            except Exception:  # a report that cannot be shown must not hide the error
                pass
    if status >= 500:
        _log.error("%s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem(
        status,
        str(exc),
        title=title,
        type_=_TYPE + slug,
        instance=request.url.path,
        headers=headers,
        **extra,
    )


def _validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        errors.append({"loc": loc, "msg": err.get("msg", ""), "type": err.get("type", "")})
    shown = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    return problem(
        422,
        f"the request does not match the API: {shown}; see /docs for the expected parameters",
        title="Invalid request",
        type_=_TYPE + "invalid-request",
        instance=request.url.path,
        errors=errors,
    )


def _http_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource {request.url.path}; see /docs for the available paths"
    return problem(
        exc.status_code,
        detail,
        instance=request.url.path,
        headers=getattr(exc, "headers", None),
    )


def log_exception(logger: logging.Logger, exc: BaseException, message: str, *args: Any) -> None:
    """Log an unexpected error with its traceback but **without its message**.

    Exception messages may carry personal data (a phone, a household id, a
    row of SQL parameters); the type and the code locations are enough to find
    the bug. Chained causes are listed by type only.

    Parameters
    ----------
    logger : logging.Logger
        Where to log (level ``ERROR``).
    exc : BaseException
        The error.
    message : str
        What failed (``%``-style, with ``args``); must not hold personal data.
    *args
        Arguments of ``message``.

    Examples
    --------
    >>> import io
    >>> stream = io.StringIO()
    >>> log = logging.getLogger("doctest.log_exception")
    >>> log.addHandler(logging.StreamHandler(stream)); log.propagate = False
    >>> message = "phone 13900000001"
    >>> try:
    ...     raise ValueError(message)
    ... except ValueError as exc:
    ...     log_exception(log, exc, "failed on %s", "/locate")
    >>> text = stream.getvalue()
    >>> "ValueError" in text, "13900000001" in text
    (True, False)
    """
    frames = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    causes: list[str] = []
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(causes) < 5:
        causes.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    logger.error(
        message + " (%s%s; message withheld: it may hold personal data)\n%s",
        *args,
        type(exc).__name__,
        f", caused by {' <- '.join(causes)}" if causes else "",
        frames.rstrip(),
    )


def _unhandled(request: Request | Scope, exc: Exception) -> JSONResponse:
    method = request.method if isinstance(request, Request) else request.get("method", "")
    path = request.url.path if isinstance(request, Request) else request.get("path", "")
    log_exception(_log, exc, "unhandled error on %s %s", method, path)
    return problem(
        500,
        "the server failed on this request; it has been logged. Retry, and report it if it "
        "persists",
        title="Internal server error",
        type_=_TYPE + "internal",
        instance=path,
    )


class CatchAllMiddleware:
    """Answer any unexpected error with a 500 problem+json, logged without its message.

    Starlette's own handler for ``Exception`` re-raises the error after
    answering, so that the server logs it with its message (which may hold
    personal data). This middleware sits inside Starlette's and stops it there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app; turn an escaped exception into a 500 problem."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            response = _unhandled(scope, exc)
            if not started:
                await response(scope, receive, send)


def error_response(request: Request, exc: Exception) -> Response:
    """Return the answer the app gives when a route raises ``exc``.

    The same as the handlers of :func:`install_error_handlers` and
    :class:`CatchAllMiddleware` together: a domain error as :func:`status_for`, an
    HTTP or request-schema error with its status, anything else a 500 logged
    without its message. For routes answered in front of the app's middleware
    (``GET /locate``, see :func:`gridmap.api.app.create_app`).

    Parameters
    ----------
    request : Request
        The request that failed.
    exc : Exception
        What the route raised.

    Returns
    -------
    Response
        A problem+json answer (or the sign-in redirect of a map page).

    Examples
    --------
    >>> from starlette.requests import Request
    >>> scope = {"type": "http", "method": "GET", "path": "/locate", "query_string": b"",
    ...          "headers": []}
    >>> from gridmap.errors import CoordinateError
    >>> r = error_response(Request(scope), CoordinateError("lat=95 is not a latitude"))
    >>> r.status_code, r.media_type
    (400, 'application/problem+json')
    """
    if isinstance(exc, GridmapError):
        return _domain_response(request, exc)
    if isinstance(exc, StarletteHTTPException):
        return _http_response(request, exc)
    if isinstance(exc, RequestValidationError):
        return _validation_response(request, exc)
    return _unhandled(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(GridmapError, _domain_response)
    app.add_exception_handler(RequestValidationError, _validation_response)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_response)  # type: ignore[arg-type]
    app.add_middleware(CatchAllMiddleware)


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413 problem+json.

    Checks ``Content-Length`` before reading, and counts streamed (chunked)
    bodies as they arrive.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    max_bytes : int or callable
        Largest body accepted, or a function returning it (read on every request,
        e.g. ``lambda: settings.max_body_bytes``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int | Callable[[], int]) -> None:
        self.app = app
        self._max_bytes = max_bytes

    @property
    def max_bytes(self) -> int:
        """The current limit in bytes."""
        m = self._max_bytes
        return int(m() if callable(m) else m)

    def _message(self, limit: int) -> str:
        mb = limit / (1024 * 1024)
        return (
            f"the request body is larger than the limit of {limit} bytes "
            f"({mb:.1f} MiB); split it into smaller requests (or raise GRIDMAP_MAX_BODY_BYTES)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the body size of an HTTP request, then call the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        has_body = False
        for name, value in scope.get("headers", ()):
            if name == b"transfer-encoding":
                has_body = True
            elif name == b"content-length":
                has_body = True
                try:
                    length = int(value)
                except ValueError:
                    length = 0
                if length > limit:
                    resp = problem(
                        413,
                        self._message(limit),
                        title="Payload too large",
                        type_=_TYPE + "payload-too-large",
                        instance=scope.get("path"),
                        limit=limit,
                        headers={"Connection": "close"},
                    )
                    await resp(scope, receive, send)
                    return
        if not has_body:  # neither Content-Length nor Transfer-Encoding: no body to count
            await self.app(scope, receive, send)
            return
        seen = 0
        message_text = self._message

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    # an HTTPException passes FastAPI's body parsing unchanged (→ 413)
                    raise StarletteHTTPException(413, detail=message_text(limit))
            return msg

        await self.app(scope, limited, send)
