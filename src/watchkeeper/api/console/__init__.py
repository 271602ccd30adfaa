"""The web console: one HTML page at ``/`` and its static modules under ``/console/``.

The page holds no data; its scripts read watchkeeper's public REST API like any client
(docs/console.md). Everything is served with a strict Content-Security-Policy: scripts
and styles from this origin only, no inline script, no framing; the scripts render
data as text (``textContent``), never as markup.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from watchkeeper.api.openapi import operation

PREFIX: Final = "/console"
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'")
HEADERS: Final = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                  "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
_TYPES: Final = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png",
                 ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}


def static_dir() -> Path:
    """Where the console's files are (inside the package, so a wheel carries them)."""
    return Path(str(resources.files(__name__) / "static"))


class Assets:
    """``/console/<path>``: a file under :func:`static_dir` with the console's headers.
    Paths that leave the folder, hidden files and unknown types are 404."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(scope.get("path", ""), scope.get("root_path", ""),
                                scope.get("method", "GET"))
        await response(scope, receive, send)

    def respond(self, path: str, root_path: str, method: str) -> Response:
        if method not in ("GET", "HEAD"):
            return JSONResponse({"detail": f"method {method} not allowed"}, status_code=405,
                                headers={"Allow": "GET, HEAD"})
        relative = path[len(root_path):] if path.startswith(root_path) else path
        relative = relative.lstrip("/")
        target = (self._root / relative).resolve()
        parts = Path(relative).parts
        if (not relative or any(p.startswith(".") for p in parts)
                or not target.is_relative_to(self._root) or not target.is_file()
                or target.suffix not in _TYPES):
            return JSONResponse({"detail": f"no console file {relative!r}"}, status_code=404,
                                headers=HEADERS)
        # no-cache: the browser revalidates (ETag), so a new version shows at once.
        return FileResponse(target, media_type=_TYPES[target.suffix],
                            headers={**HEADERS, "Cache-Control": "no-cache"})


def console_routes() -> list[BaseRoute]:
    """``/`` (the page) and ``/console/...`` (its scripts, styles and uPlot)."""
    root = static_dir()

    @operation("the web console (HTML; its scripts read this API)", "public", errors=(),
               answer_type="text/html")
    async def page(request: Request) -> Response:
        return FileResponse(root / "index.html", media_type=_TYPES[".html"],
                            headers={**HEADERS, "Cache-Control": "no-cache"})

    return [Route("/", page, methods=["GET"]), Mount(PREFIX, app=Assets(root))]
