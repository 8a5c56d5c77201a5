"""API tokens: created once, shown once, stored as a SHA-256 hash.

A token looks like `glb_<43 url-safe characters>` (256 random bits). The database
keeps its hash and its first characters (`prefix`) so a user can tell tokens apart;
whoever reads the database cannot use what is there.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from grader.models import ApiToken

TOKEN_PREFIX = "glb_"  # noqa: S105 (a marker, not a secret)
PREFIX_LENGTH = 12
# Bump last_used_at at most this often: a busy client must not write on every request.
LAST_USED_RESOLUTION_S = 60


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def api_token_create(user: User, *, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for `user`; return the row and the token itself (the only time it is known)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(user=user, name=name, prefix=token[:PREFIX_LENGTH], token_hash=token_hash(token))
    return row, token


def api_token_user(token: str) -> Any | None:
    """Return the active user the token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = ApiToken.objects.select_related("user").filter(token_hash=token_hash(token)).first()
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`. A request that sends a wrong token is refused (401), never
    retried as a session request: a client that means to use a token should learn it is wrong."""

    openapi_bearerFormat = "glb_ token from `manage.py api_token <username>`"

    def __call__(self, request: HttpRequest) -> Any | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(401, "Malformed Authorization header: use 'Bearer <token>'.")
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        user = api_token_user(token)
        if user is None:
            raise AuthenticationError(401, "Invalid API token.")
        # Views and services read request.user, whatever authenticated the request.
        request.user = user
        return user
