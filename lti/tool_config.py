"""pylti1p3's view of Gradlab's registrations, read from the database, and its launch data storage.

Every issuer may have several client ids (several registrations in one LMS), so
the registration is always looked up by (issuer, client id).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from pylti1p3.deployment import Deployment as LibDeployment
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract

from lti.keys import key_current, public_jwk
from lti.models import Deployment, LaunchData, Platform, UsedNonce


class GradlabRegistration(Registration):
    """A registration that signs with Gradlab's current key and names it by its stored kid."""

    platform: Platform
    _kid: str | None = None

    def get_kid(self) -> str | None:
        return self._kid

    def get_jwks(self) -> list[Any]:
        return [public_jwk(key_current())]


def registration_for(platform: Platform) -> GradlabRegistration:
    key = key_current()
    registration = GradlabRegistration()
    registration.platform = platform
    registration._kid = key.kid
    (
        registration.set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
        .set_key_set_url(platform.jwks_url)
        .set_tool_private_key(key.private_key_pem)
        .set_tool_public_key(key.public_key_pem)
    )
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    return registration


def platform_find(issuer: str, client_id: str | None) -> Platform | None:
    """The active platform of (issuer, client id); with no client id, the issuer's only one."""
    platforms = Platform.objects.filter(issuer=issuer, is_active=True)
    if client_id:
        return platforms.filter(client_id=client_id).first()
    found = list(platforms[:2])
    return found[0] if len(found) == 1 else None


class DatabaseToolConf(ToolConfAbstract[Any]):
    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        platform = platform_find(iss, None)
        return registration_for(platform) if platform else None  # type: ignore[return-value]

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any, **kwargs: Any) -> Registration:
        platform = platform_find(iss, client_id)
        return registration_for(platform) if platform else None  # type: ignore[return-value]

    def find_deployment(self, iss: str, deployment_id: str) -> LibDeployment | None:
        return None

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> LibDeployment | None:
        if not Deployment.objects.filter(
            platform__issuer=iss, platform__client_id=client_id, platform__is_active=True, deployment_id=deployment_id
        ).exists():
            return None
        return LibDeployment().set_deployment_id(deployment_id)


class DatabaseLaunchDataStorage(LaunchDataStorage[Any]):
    """Launch data in the LaunchData table, keyed per browser by pylti1p3's session-id cookie."""

    default_lifetime_s = 3600

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        row = LaunchData.objects.filter(key=self._prepare_key(key)[:255], expires_at__gt=timezone.now()).first()
        return None if row is None else row.value

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        expires_at = timezone.now() + timedelta(seconds=exp or self.default_lifetime_s)
        name = self._prepare_key(key)[:255]
        try:
            with transaction.atomic():
                LaunchData.objects.update_or_create(key=name, defaults={"value": value, "expires_at": expires_at})
        except IntegrityError:  # created by a concurrent request in between: write over it
            LaunchData.objects.filter(key=name).update(value=value, expires_at=expires_at)

    def check_value(self, key: str) -> bool:
        return LaunchData.objects.filter(key=self._prepare_key(key)[:255], expires_at__gt=timezone.now()).exists()

    def take_value(self, key: str) -> bool:
        """Delete the key; True only for the one caller that deleted a live entry."""
        deleted, _ = LaunchData.objects.filter(key=self._prepare_key(key)[:255], expires_at__gt=timezone.now()).delete()
        return deleted > 0


# Used nonces are kept this long. Forgetting one later is safe: a replay also needs the
# nonce's entry in LaunchData, which the first launch deleted.
USED_NONCE_KEEP_S = 2 * 86400


def launch_data_sweep(now: Any = None) -> int:
    """Delete expired launch data and old used nonces; return how many rows went."""
    now = now or timezone.now()
    deleted, _ = LaunchData.objects.filter(expires_at__lte=now).delete()
    nonces, _ = UsedNonce.objects.filter(used_at__lt=now - timedelta(seconds=USED_NONCE_KEEP_S)).delete()
    return deleted + nonces
