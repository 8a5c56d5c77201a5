"""API tokens: created once, shown once, stored as a SHA-256 hash.

A token looks like `glb_<43 url-safe characters>` (256 random bits). The database
keeps its hash and its first characters (`prefix`) so a user can tell tokens apart;
whoever reads the database cannot use what is there.

A token expires (settings.API_TOKEN_DAYS after it is made, unless told otherwise) and can be
revoked: `manage.py api_token --revoke`, the admin's "Revoke" action, `DELETE /api/tokens/{prefix}`,
and, for every token of the user at once, a change of the user's password.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
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


def api_token_create(user: User, *, name: str = "", days: int | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user`, valid `days` (settings.API_TOKEN_DAYS by default); return the row and
    the token itself (the only time it is known)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    lifetime = timedelta(days=days if days is not None else settings.API_TOKEN_DAYS)
    row = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=token[:PREFIX_LENGTH],
        token_hash=token_hash(token),
        expires_at=timezone.now() + lifetime,
    )
    return row, token


def api_tokens_usable() -> Q:
    """The tokens that still authenticate: not revoked, not expired."""
    return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


def api_tokens_revoke(tokens: QuerySet[ApiToken]) -> int:
    """Revoke the given tokens (those not revoked already); return how many."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_token_user(token: str) -> Any | None:
    """Return the active user the token belongs to, or None (unknown, expired or revoked token)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = ApiToken.objects.select_related("user").filter(api_tokens_usable(), token_hash=token_hash(token)).first()
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


@receiver(pre_save, sender=User)
def _remember_password(sender: type[User], instance: User, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.pk and (update_fields is None or "password" in update_fields):
        stored = User.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
        instance._gradlab_password_changed = stored is not None and stored != instance.password  # type: ignore[attr-defined]


@receiver(post_save, sender=User)
def _revoke_tokens_on_password_change(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    """A new password (changed, reset, or set by staff) ends every API token of the user."""
    if not created and getattr(instance, "_gradlab_password_changed", False):
        api_tokens_revoke(ApiToken.objects.filter(user=instance))
        instance._gradlab_password_changed = False  # type: ignore[attr-defined]


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
