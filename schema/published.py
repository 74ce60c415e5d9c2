"""What the service publishes about itself: the OpenAPI document of its HTTP endpoints, the
GraphQL SDL (to authenticated callers) and GraphiQL's vendored assets (development only)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from app.auth.edge import bearer_token
from app.auth.tokens import IssuerUnavailable
from app.errors import Unauthenticated
from schema.openapi import document

STATIC = Path(__file__).resolve().parent / "static" / "graphiql"
SDL_FILE = Path(__file__).resolve().parent / "schema.graphql"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# The page loads only its own scripts: no inline code, no CDN.
GRAPHIQL_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
                "frame-ancestors 'none'; base-uri 'none'")


@cache
def assets() -> dict[str, bytes]:
    """GraphiQL's vendored files (MANIFEST.json) and our page's script, by name."""
    manifest = json.loads((STATIC / "MANIFEST.json").read_text(encoding="utf-8"))
    names = [*manifest["files"], "index.js"]
    return {name: (STATIC / name).read_bytes() for name in names}


def graphiql_page() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                        headers={"content-security-policy": GRAPHIQL_CSP})


async def static_endpoint(request: Request) -> Response:
    name = request.path_params["name"]
    body = assets().get(name)
    if body is None:
        return JSONResponse({"errors": [{"message": "Not found.",
                                         "extensions": {"code": "NOT_FOUND"}}]}, status_code=404)
    return Response(body, media_type=TYPES[Path(name).suffix],
                    headers={"cache-control": "public, max-age=86400"})


async def openapi_endpoint(request: Request) -> Response:
    return JSONResponse(document())


@cache
def sdl() -> str:
    """The SDL shipped in the package (a test keeps it equal to the running schema)."""
    return SDL_FILE.read_text(encoding="utf-8")


async def sdl_endpoint(request: Request) -> Response:
    """The SDL for people and clients that may call the API (introspection is off in
    production): any valid token of this service's issuer."""
    token = bearer_token(request.headers.get("authorization"))
    try:
        if token is None:
            raise Unauthenticated()
        await request.app.state.runtime.verify_token(token)
    except IssuerUnavailable:
        return JSONResponse({"errors": [{"message": "The identity provider cannot be reached.",
                                         "extensions": {"code": "SERVICE_UNAVAILABLE"}}]},
                            status_code=503, headers={"Retry-After": "30"})
    except Unauthenticated:
        return JSONResponse({"errors": [{"message": "Authentication required.",
                                         "extensions": {"code": "UNAUTHENTICATED"}}]},
                            status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="safety-net"'})
    return Response(sdl(), media_type="application/graphql; charset=utf-8")
