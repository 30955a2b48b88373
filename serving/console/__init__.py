"""The research console: a browser page served at `/`, same origin as the API.

Why hand-written static files (an HTML shell, one stylesheet, a few ES modules) rather than
a built single-page app: nothing to compile, so no Node toolchain at install or run time;
the assets ship as package data and load as they are (about 60 KB uncompressed, no
external fonts, CDNs or trackers, so it works offline); and every byte a user runs is
readable in the repository. The page talks only to the public API (native runs and event
stream, LangGraph-style threads, the corpus routes), so it can do nothing a client could
not. Model and document text is only ever put into the page as text nodes, and the page
is served with a strict Content-Security-Policy as a second line against script injection.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/console"
# Scripts, styles and connections only from this origin; nothing may frame the page.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page() -> str:
    return (resources.files(__name__) / "static" / "index.html").read_text(encoding="utf-8")


def mount_console(app: FastAPI) -> None:
    """Serve the page at `/` and its assets under `/console/`."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def console_page() -> HTMLResponse:
        return HTMLResponse(_page(), headers=HEADERS)

    app.include_router(router)
    app.mount(
        ASSETS_PATH,
        StaticFiles(packages=[(__name__, "static")]),
        name="console-assets",
    )
