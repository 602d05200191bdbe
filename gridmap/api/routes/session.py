"""Sign-in for browsers: the map pages opened by typing their address.

A browser cannot send an ``X-API-Key`` header when a dispatcher types
``/maps/locate?lon=…`` into it. ``GET /login`` shows a form for the API key;
``POST /login`` checks it, opens a server-side session (:mod:`gridmap.db.sessions`)
and keeps only the session's random id in a cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` over HTTPS — also behind a proxy listed in
``GRIDMAP_TRUSTED_PROXIES`` that says ``X-Forwarded-Proto: https``), then goes on
to the page asked for (``next``, a path on this service only). A map page asked
for by a browser without a session redirects here.

The session ends after ``GRIDMAP_SESSION_IDLE_MINUTES`` without use,
``GRIDMAP_SESSION_HOURS`` after sign-in, at sign-out (``POST /logout``) and when
its key is revoked or rotated; an ended session's cookie is worth nothing.

The form is protected against cross-site forgery (login CSRF): ``GET /login``
sets a random token in a ``SameSite=Strict`` cookie and in the form, and
``POST /login`` refuses (403) a form whose token does not match the cookie, or
that a browser says came from another site (``Origin``, ``Sec-Fetch-Site``).
Wrong keys count towards the rate limits of :class:`gridmap.api.security.Authenticator`
(429 with ``Retry-After``). Sign-ins and sign-outs are audited (entity ``session``).

The cookie is accepted for reading only (``GET`` and ``HEAD``): every request
that changes something still needs the key in a header, so a page elsewhere
cannot make a signed-in browser edit a plan. Signed in, ``GET /login`` shows who
you are, the maps of the published plans and a form to locate a coordinate.
"""

from __future__ import annotations

import hmac
import html
import secrets
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import LocatorDep, SettingsDep, optional_principal
from gridmap.api.errors import NotAuthenticatedError, TooManyRequestsError
from gridmap.api.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Authenticator,
    Principal,
    client_address,
    is_https,
)

__all__ = ["router", "safe_next"]

router = APIRouter(tags=["sign-in"])

_MAX_FORM = 4096  # bytes of the sign-in form; a key is 40-odd characters

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gridmap 登录 Sign in</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       max-width: 34rem; margin: 3rem auto; padding: 0 1rem; color: #222; }}
label {{ display: block; margin: .8rem 0 .3rem; }}
input {{ font: inherit; padding: .4rem; }}
input[type=password], input[type=text], select {{ width: 100%; box-sizing: border-box; }}
select {{ font: inherit; padding: .4rem; display: block; }}
.error {{ color: #b00020; }} .muted {{ color: #666; font-size: .9em; }}
button {{ font: inherit; padding: .4rem 1.2rem; margin-top: 1rem; display: block; }}
</style></head><body>
<h1>gridmap 网格管理</h1>
{body}
</body></html>"""


def safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this service, else ``/login``.

    Examples
    --------
    >>> safe_next("/maps/plans/1?kind=quality")
    '/maps/plans/1?kind=quality'
    >>> safe_next("//evil.example/x"), safe_next("https://evil.example/"), safe_next(None)
    ('/login', '/login', '/login')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/login"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/login"
    return target


def _form(next_path: str, error: str | None = None, csrf: str = "") -> str:
    err = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return _PAGE.format(
        body=f"""<h2>登录 Sign in</h2>{err}
<form method="post" action="/login">
<label for="key">API 密钥 API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{html.escape(next_path)}">
<input type="hidden" name="csrf" value="{html.escape(csrf)}">
<button type="submit">登录 Sign in</button>
</form>
<p class="muted">An administrator creates keys with <code>gridmap keys create --role viewer</code>
(or dispatcher, planner). This browser is signed in for reading maps only, until you sign
out or the session ends.</p>"""
    )


def _signed_in(principal: Principal, plan_ids: list[int]) -> str:
    plans = "".join(
        f'<li><a href="/maps/plans/{pid}">方案 Plan {pid}</a> · '
        f'<a href="/maps/plans/{pid}?kind=quality">质量 quality</a></li>'
        for pid in plan_ids
    )
    plans = plans or "<li>no published plan yet 尚无已发布方案</li>"
    return _PAGE.format(
        body=f"""<p>已登录 Signed in as <b>{html.escape(principal.name)}</b>
(role 角色: {html.escape(principal.role)})</p>
<form method="post" action="/logout"><button type="submit">退出 Sign out</button></form>
<h2>已发布方案 Published plans</h2><ul>{plans}</ul>
<h2>坐标定位 Locate a coordinate</h2>
<form method="get" action="/maps/locate">
<label for="lon">经度 Longitude</label><input id="lon" name="lon" type="text" required>
<label for="lat">纬度 Latitude</label><input id="lat" name="lat" type="text" required>
<label for="crs">坐标系 Coordinates</label>
<select id="crs" name="crs">
<option value="wgs84">WGS84 (GPS)</option><option value="gcj02">GCJ-02 (高德 AMap, 腾讯)</option>
<option value="bd09">BD-09 (百度 Baidu)</option><option value="cgcs2000">CGCS2000</option>
</select>
<button type="submit">定位 Locate</button>
</form>"""
    )


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(
        body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


_HTML = {"text/html": {"schema": {"type": "string"}}}


def _page_doc(text: str) -> dict[str, Any]:
    return {"description": text, "content": _HTML}


def _trusted(request: Request) -> tuple[str, ...]:
    return tuple(request.app.state.settings.trusted_proxies)


def _csrf_token(request: Request) -> str:
    """Return the browser's form token (kept while it is well-formed), else a new one."""
    kept = request.cookies.get(CSRF_COOKIE, "")
    if 32 <= len(kept) <= 64 and kept.replace("-", "").replace("_", "").isalnum():
        return kept
    return secrets.token_urlsafe(32)


def _form_page(
    request: Request, next_path: str, error: str | None = None, status: int = 200, **kw: Any
) -> HTMLResponse:
    """Return the sign-in form with its anti-forgery token, in the page and in a cookie."""
    token = _csrf_token(request)
    response = _html(_form(next_path, error, token), status, **kw)
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=is_https(request, _trusted(request)),
    )
    return response


def _drop_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request, _trusted(request)),
    )


@router.get(
    "/login",
    response_class=HTMLResponse,
    summary="Sign-in page for browsers (open)",
    responses={
        200: _page_doc("the sign-in form, or who you are when signed in"),
        303: {"description": "signed in already: on to `next`"},
        401: _page_doc("the browser's session has ended: the form again"),
        429: _page_doc("too many wrong keys: wait Retry-After seconds"),
    },
)
async def login_page(
    request: Request,
    locator: LocatorDep,
    next: Annotated[  # noqa: A002
        str | None, Query(max_length=2000, description="path to open after signing in")
    ] = None,
) -> Response:
    """Show the sign-in form; signed in, who you are and the maps you can open."""
    try:
        principal = await optional_principal(request)
    except NotAuthenticatedError:  # a session that ended, or a key revoked since
        response = _form_page(
            request, safe_next(next), "your sign-in is no longer valid; sign in again", 401
        )
        _drop_session_cookie(response, request)
        return response
    except TooManyRequestsError as exc:
        return _html(
            _form(safe_next(next), str(exc)), 429, headers={"Retry-After": str(exc.retry_after)}
        )
    if principal is not None:
        if next and safe_next(next) != "/login":
            return RedirectResponse(safe_next(next), status_code=303)
        return _html(_signed_in(principal, sorted(a.plan_id for a in locator.areas)))
    return _form_page(request, safe_next(next))


_LOGIN_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "description": "the API key"},
                    "next": {"type": "string", "description": "a path of this service"},
                    "csrf": {"type": "string", "description": "the form's token (GET /login)"},
                },
                "required": ["key", "csrf"],
            }
        }
    },
}


def _cross_site(request: Request) -> bool:
    """Whether the browser says the form was posted from another site."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


@router.post(
    "/login",
    response_class=HTMLResponse,
    status_code=303,
    summary="Sign in with an API key (open)",
    openapi_extra={"requestBody": _LOGIN_BODY},
    responses={
        303: {"description": "signed in: the session cookie is set; on to `next`"},
        400: _page_doc("the form is empty or unreadable"),
        401: _page_doc("the key is unknown, revoked or expired"),
        403: _page_doc("the form came from another site or its token expired"),
        413: _page_doc("the form is too large"),
        429: _page_doc("too many wrong keys: wait Retry-After seconds"),
    },
)
async def login(request: Request, settings: SettingsDep) -> Response:
    """Check the form's key (``key``, ``next``, ``csrf``), open a session, go on to ``next``."""
    body = await request.body()
    if len(body) > _MAX_FORM:
        return _form_page(request, "/login", "the form is too large; paste the key alone", 413)
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return _form_page(request, "/login", "the form could not be read; try again", 400)
    key = (fields.get("key") or [""])[0].strip()
    target = safe_next((fields.get("next") or [""])[0])
    sent = (fields.get("csrf") or [""])[0]
    kept = request.cookies.get(CSRF_COOKIE, "")
    if _cross_site(request) or not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
        return _form_page(
            request,
            target,
            "the sign-in form expired or came from another site; sign in on this page",
            403,
        )
    if not key:
        return _form_page(request, target, "enter your API key", 400)
    auth: Authenticator = request.app.state.authenticator
    address = client_address(request, _trusted(request))
    try:
        principal = await run_in_threadpool(auth.check_key, key, address)
    except TooManyRequestsError as exc:
        return _form_page(
            request, target, str(exc), 429, headers={"Retry-After": str(exc.retry_after)}
        )
    except NotAuthenticatedError:
        return _form_page(
            request,
            target,
            "the API key is unknown or revoked (or expired); check it or ask an admin for one",
            401,
        )
    session_id = await run_in_threadpool(_open_session, request, principal, settings)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request, _trusted(request)),
    )
    response.delete_cookie(CSRF_COOKIE, path="/login", httponly=True, samesite="strict")
    return response


def _open_session(request: Request, principal: Principal, settings: Any) -> str:
    from gridmap.db import write_audit
    from gridmap.db.keys import get_key
    from gridmap.db.sessions import create_session

    store = request.app.state.store
    with store.session(write=True) as s:
        rec = get_key(s, principal.key_id)
        session_id = create_session(s, rec, absolute_s=settings.session_hours * 3600)
        write_audit(
            s,
            actor=principal.actor,
            action="sign_in",
            entity="session",
            entity_id=principal.key_id,
            after={"role": rec.role, "hours": settings.session_hours},
        )
    return session_id


def _close_session(request: Request, session_id: str) -> None:
    from gridmap.db import write_audit
    from gridmap.db.sessions import end_session, resolve_session

    store = request.app.state.store
    idle = request.app.state.settings.session_idle_minutes * 60
    info = resolve_session(store, session_id, idle_s=idle)
    if end_session(store, session_id) and info is not None:
        with store.session(write=True) as s:
            write_audit(
                s,
                actor=f"{info.key.name} (key {info.key.id})",
                action="sign_out",
                entity="session",
                entity_id=info.key.id,
            )


@router.post(
    "/logout",
    response_class=RedirectResponse,
    status_code=303,
    summary="Sign out: end the browser's session (open)",
    responses={
        303: {"description": "Back to the sign-in page; the session ended, the cookie deleted"}
    },
)
async def logout(request: Request) -> Response:
    """End the session of the browser's cookie (in the store) and go back to the sign-in page."""
    session_id = request.cookies.get(SESSION_COOKIE, "").strip()
    if session_id:
        await run_in_threadpool(_close_session, request, session_id)
    response = RedirectResponse("/login", status_code=303)
    _drop_session_cookie(response, request)
    return response
