"""The dashboard's HTML: a login form and one shell page; everything on it comes from the JSON API.

Like Datasette, the page is only a view of the API (service/ui/static/app.js fetches
the same routes curl uses and listens to GET /events), so what a run is, who may do
what and how an error reads are decided once, by the API. No build step, nothing
fetched from outside the service.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from service.http.session import COOKIE, LIFETIME, SessionSigner
from service.http.throttle import Throttle

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a page of this dashboard: never another site (an open redirect)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """Browsers ask for it on every page whatever the pages link to."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@router.get("/ui/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    return templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/ui/login", response_class=HTMLResponse)
async def login(
    request: Request, token: Annotated[str, Form(max_length=512)], next: Annotated[str, Form(max_length=2048)] = ""
) -> Response:
    """Sign in; a client that fails too often waits (429) before a token it sends is even looked at."""
    signer: SessionSigner = request.app.state.signer
    throttle: Throttle = request.app.state.throttle
    client = request.client.host if request.client else ""
    wait = throttle.wait(client, token.strip().encode())
    if wait:
        context = {"next": _safe_next(next), "error": f"Too many failed sign-ins: try again in {math.ceil(wait)} s."}
        headers = {"Retry-After": str(math.ceil(wait))}
        return templates.TemplateResponse(request, "login.html", context, status_code=429, headers=headers)
    cookie = signer.issue(token.strip())
    if cookie is None:
        throttle.failed(client)
        if request.app.state.auth_failed is not None:
            request.app.state.auth_failed("login")
        context = {"next": _safe_next(next), "error": "That token is not one this service accepts."}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)
    throttle.succeeded(client, token.strip().encode())  # the same token sent as a bearer is proven too
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=LIFETIME,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/ui/logout")
async def logout(request: Request) -> RedirectResponse:
    """Revoke the session on the server (copies of the cookie stop working, its streams close), then drop it."""
    signer: SessionSigner = request.app.state.signer
    session = signer.check(request.cookies.get(COOKIE, ""))
    if session is not None:
        await signer.revoke(session)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# The pages app.js draws (its route()); ids and names hold no "/".
PAGES = re.compile(
    r"|runs|runs/[^/]+|models|models/[^/]+|data|train|compare|approvals|endpoints|endpoints/[^/]+|schedules"
)


@router.get("/ui", response_class=HTMLResponse)
@router.get("/ui/{page:path}", response_class=HTMLResponse)
async def shell(request: Request, page: str = "") -> Response:
    """The page's shell (app.js draws it); a path that is no page answers 404, with the shell saying so."""
    state = request.scope.get("state", {})
    context = {
        "role": state.get("role", "read"),
        "csrf": state.get("csrf", ""),
        "tokens": bool(request.app.state.signer_has_tokens),
    }
    status = 200 if PAGES.fullmatch(page.rstrip("/")) else 404
    return templates.TemplateResponse(request, "shell.html", context, status_code=status)
