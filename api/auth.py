"""Bearer-token authentication and authorization.

Tokens have the shape of Sentry's user auth tokens (``sntryu_`` and 64 hex characters) and are stored only as
their SHA-256 hex (``ApiTokens``), each bound to one organization and one scope: ``read`` allows GET,
``write`` allows everything. Answers: no or malformed credentials, or an unknown token, 401; a token used on
another organization, or a read token used to change something, 403. The organization in the URL is compared
with the token's own organization (its id and slug) and never looked up, so the answer is the same whether
another organization exists or not.
"""

from __future__ import annotations

import secrets

from api.directory import ApiToken, Directory, Organization
from api.errors import ApiError, forbidden
from transforms.storage.registry import TOKEN_HEX_CHARS, TOKEN_PREFIX, hash_token

READ, WRITE = "read", "write"
# What GET /api/0/ reports for each scope, in Sentry's scope names (issue reads; bulk update and delete).
SCOPES = {
    READ: ("event:read", "org:read", "project:read"),
    WRITE: ("event:admin", "event:read", "event:write", "org:read", "project:read"),
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_CREDENTIALS = "Authentication credentials were not provided."
INVALID_TOKEN = "Invalid token"


def new_token() -> str:
    """A fresh token in Sentry's user auth token shape (``pipeline.admin create-token`` issues these)."""
    return TOKEN_PREFIX + secrets.token_hex(TOKEN_HEX_CHARS // 2)


def token_hash(token: str) -> str:
    """What ``ApiTokens.TokenHash`` stores for ``token`` (``transforms.storage.registry.hash_token``)."""
    return hash_token(token)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 when absent or malformed."""
    if not authorization:
        raise ApiError(401, NO_CREDENTIALS)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise ApiError(401, INVALID_TOKEN)
    return token


def authenticate(directory: Directory, authorization: str | None) -> ApiToken:
    """The stored token the header carries; 401 when there is none."""
    token = directory.token(token_hash(bearer_token(authorization)))
    if token is None:
        raise ApiError(401, INVALID_TOKEN)
    return token


def authorize(directory: Directory, token: ApiToken, organization_ref: str, method: str) -> Organization:
    """The token's organization when ``organization_ref`` names it and the scope allows ``method``; else 403."""
    organization = directory.organization(token.organization_id)
    if organization is None or not organization.named_by(organization_ref):
        raise forbidden()
    if method.upper() not in SAFE_METHODS and token.scope != WRITE:
        raise forbidden()
    return organization
