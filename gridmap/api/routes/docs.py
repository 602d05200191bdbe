"""The API documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, without the internet.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN, which a government
intranet (政务外网) cannot reach, so they stay blank there. These pages load the
same tools from this server (``/maps/static/``, the files shipped in
``gridmap/static/vendor/``, see its README for versions and licences).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

__all__ = ["router", "SWAGGER_UI", "REDOC"]

router = APIRouter(include_in_schema=False)

#: Vendored folders (under ``gridmap/static/vendor/``) of the two documentation tools.
SWAGGER_UI = "swagger-ui-dist-5.35.0"
REDOC = "redoc-2.5.4"


def _static(request: Request, path: str) -> str:
    return request.url_for("map_static_file", path=path).path


def _title(request: Request) -> str:
    return f"{request.app.title} — API"


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over this API's OpenAPI document, with assets from this server."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=_title(request),
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=_static(request, f"{SWAGGER_UI}/swagger-ui-bundle.js"),
        swagger_css_url=_static(request, f"{SWAGGER_UI}/swagger-ui.css"),
        swagger_favicon_url=_static(request, f"{SWAGGER_UI}/favicon-32x32.png"),
    )


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    """Serve the OAuth2 redirect page Swagger UI expects (no OAuth2 here; kept for its UI)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over this API's OpenAPI document, with no font or script from the internet."""
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=_title(request),
        redoc_js_url=_static(request, f"{REDOC}/bundles/redoc.standalone.js"),
        redoc_favicon_url=_static(request, f"{SWAGGER_UI}/favicon-32x32.png"),
        with_google_fonts=False,
    )
