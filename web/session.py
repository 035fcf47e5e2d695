"""Signing in to the pages with an API token, and CSRF protection of every change.

The session is the token itself (``pipeline.admin create-token``), in an HttpOnly cookie (SameSite=Lax,
Secure when the page was served over HTTPS, 12 hours): script cannot read it, no other site's form posts
carry it, it never appears in a URL, and every request checks it with the API's own authentication, so a
deleted token stops working within the API's token cache time (30 s). Nothing is kept on the server, so any
number of service processes serve the same sessions.

Changes are POST forms carrying a CSRF token: HMAC-SHA256 of a fixed label keyed with the session's token, so
only a page rendered for that session can know it (an attacker's site can neither read the cookie nor compute
the value), and it needs no server-side state either. The sign-in form, which has no session yet, uses a
random value in a second cookie that must match the form's (double submit). POSTs whose ``Origin`` header
names another site are refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "issues_session"
LOGIN_CSRF_COOKIE = "issues_signin_csrf"
FLASH_COOKIE = "issues_notice"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
_CSRF_LABEL = b"occurrence-pipeline web csrf v1"


def session_token(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return token or None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def csrf_token(session: str) -> str:
    """The CSRF value of the forms of ``session``'s pages."""
    return hmac.new(session.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_ok(session: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token(session), submitted or "")


def new_login_csrf() -> str:
    return secrets.token_hex(16)


def set_login_csrf(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def login_csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(expected) and bool(submitted) and hmac.compare_digest(expected or "", submitted or "")


def same_origin(request: Request) -> bool:
    """False when the request says it comes from another origin (``Origin``, else ``Referer``)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    return urlsplit(source).netloc == request.headers.get("host", "")


def safe_next(path: str | None, default: str) -> str:
    """A local path to go to after signing in (never another site: no scheme, no ``//``, no backslash)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path
