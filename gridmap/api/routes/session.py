"""Sign-in for browsers: the map pages opened by typing their address.

A browser cannot send an ``X-API-Key`` header when a dispatcher types
``/maps/locate?lon=…`` into it. ``GET /login`` shows a form for the API key;
``POST /login`` checks it and keeps it in a cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` over HTTPS, ``GRIDMAP_SESSION_HOURS`` long),
then goes on to the page asked for (``next``, a path on this service only).
A map page asked for by a browser without a key redirects here.

The cookie is accepted for reading only (``GET`` and ``HEAD``): every request
that changes something still needs the key in a header, so a page elsewhere
cannot make a signed-in browser edit a plan. Signed in, ``GET /login`` shows who
you are, the maps of the published plans and a form to locate a coordinate.
``/logout`` forgets the key.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import LocatorDep, SettingsDep, optional_principal
from gridmap.api.errors import NotAuthenticatedError
from gridmap.api.security import SESSION_COOKIE, KeyCache, Principal

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


def _form(next_path: str, error: str | None = None) -> str:
    err = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return _PAGE.format(
        body=f"""<h2>登录 Sign in</h2>{err}
<form method="post" action="/login">
<label for="key">API 密钥 API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{html.escape(next_path)}">
<button type="submit">登录 Sign in</button>
</form>
<p class="muted">An administrator creates keys with <code>gridmap keys create --role viewer</code>
(or dispatcher, planner). The key is kept in this browser for reading maps only.</p>"""
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


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/login", response_class=HTMLResponse, summary="Sign-in page for browsers (open)")
async def login_page(
    request: Request,
    locator: LocatorDep,
    next: Annotated[str | None, Query(description="path to open after signing in")] = None,  # noqa: A002
) -> Response:
    """Show the sign-in form; signed in, who you are and the maps you can open."""
    try:
        principal = await optional_principal(request)
    except NotAuthenticatedError:  # a kept key that was revoked since
        response = _html(_form(safe_next(next), "your key is no longer valid; sign in again"), 401)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response
    if principal is not None:
        if next and safe_next(next) != "/login":
            return RedirectResponse(safe_next(next), status_code=303)
        return _html(_signed_in(principal, sorted(a.plan_id for a in locator.areas)))
    return _html(_form(safe_next(next)))


@router.post("/login", response_class=HTMLResponse, summary="Sign in with an API key (open)")
async def login(request: Request, settings: SettingsDep) -> Response:
    """Check the key of the form (``key``, ``next``); keep it in a cookie and go on to ``next``."""
    body = await request.body()
    if len(body) > _MAX_FORM:
        return _html(_form("/login", "the form is too large; paste the key alone"), 413)
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return _html(_form("/login", "the form could not be read; try again"), 400)
    key = (fields.get("key") or [""])[0].strip()
    target = safe_next((fields.get("next") or [""])[0])
    if not key:
        return _html(_form(target, "enter your API key"), 400)
    cache: KeyCache = request.app.state.key_cache
    principal = await run_in_threadpool(cache.authenticate, request.app.state.store, key)
    if principal is None:
        return _html(
            _form(target, "the API key is unknown or revoked; check it or ask an admin for one"),
            401,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        key,
        max_age=int(settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post(
    "/logout",
    response_class=RedirectResponse,
    status_code=303,
    summary="Sign out: forget the key kept by the browser (open)",
    responses={303: {"description": "Back to the sign-in page, the cookie deleted"}},
)
async def logout() -> Response:
    """Delete the sign-in cookie and go back to the sign-in page."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
