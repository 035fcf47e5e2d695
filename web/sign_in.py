"""The web interface's sign-in routes: ``GET /`` (to the signed-in organization's stream, or to sign in),
``GET``/``POST /login`` (an API token, kept in an HttpOnly cookie; the form is CSRF-checked) and
``POST /logout``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api import auth
from api.errors import ApiError
from web import session
from web.pages import Pages, flash, read_form


def add_sign_in_routes(router: APIRouter, pages: Pages) -> None:
    directory, render, viewer_for, guarded = pages.directory, pages.render, pages.viewer_for, pages.guarded
    stream_path = pages.stream_path

    @router.get("/")
    def home(request: Request) -> Response:
        def build() -> Response:
            viewer = viewer_for(request, None)
            return RedirectResponse(stream_path(viewer.organization), status_code=303)

        return guarded(request, build)

    @router.get("/login")
    def login_page(request: Request, next: str | None = None) -> Response:
        value = session.new_login_csrf()
        notice = flash(request)
        response = render(
            request,
            "login.html",
            csrf=value,
            next=session.safe_next(next, ""),
            error=notice.text if notice is not None and notice.kind == "error" else None,
        )
        session.set_login_csrf(response, request, value)
        if notice:
            response.delete_cookie(session.FLASH_COOKIE)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        token = form.get("token", "").strip()
        target = session.safe_next(form.get("next"), "")

        def fail(message: str, status: int = 400) -> Response:
            value = session.new_login_csrf()
            response = render(request, "login.html", status, csrf=value, next=target, error=message)
            session.set_login_csrf(response, request, value)
            return response

        if not session.same_origin(request) or not session.login_csrf_ok(request, form.get("csrf_token")):
            return fail("The sign-in form expired. Try again.", 403)
        if not token:
            return fail("Enter an API token.")
        try:
            stored = await run_in_threadpool(auth.authenticate, directory, f"Bearer {token}")
            organization = await run_in_threadpool(directory.organization, stored.organization_id)
        except ApiError:
            return fail("That token is not valid. Tokens look like sntryu_ followed by 64 characters.", 401)
        if organization is None:
            return fail("That token's organization does not exist.", 401)
        response = RedirectResponse(target or stream_path(organization), status_code=303)
        session.start_session(response, request, token)
        response.delete_cookie(session.LOGIN_CSRF_COOKIE, path="/")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await read_form(request)
        token = session.session_token(request)
        if token is not None and not (
            session.same_origin(request) and session.csrf_ok(token, form.get("csrf_token"))
        ):
            return render(request, "error.html", 403, title="Not signed out", message="The form expired.")
        response = RedirectResponse("/login", status_code=303)
        session.end_session(response)
        return response
