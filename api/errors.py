"""Errors a caller of the issue index can cause, each with the HTTP status and ``detail`` message it answers."""

from __future__ import annotations

PERMISSION_DENIED = "You do not have permission to perform this action."
NOT_FOUND = "The requested resource does not exist"


class ApiError(Exception):
    """A request the index refuses; ``detail`` is shown to the user (the HTTP body ``{"detail": ...}``)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def bad_request(detail: str) -> ApiError:
    return ApiError(400, detail)


def forbidden(detail: str = PERMISSION_DENIED) -> ApiError:
    return ApiError(403, detail)


def not_found(detail: str = NOT_FOUND) -> ApiError:
    return ApiError(404, detail)
