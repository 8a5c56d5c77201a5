"""Validating an LTI 1.3 launch (the id_token the platform posts to /lti/launch/).

`GradlabMessageLaunch` runs pylti1p3's checks in its own order and turns each failure
into a `LaunchError` whose `code` names what is wrong and whose `message` says it to
a person: the launch view shows it and logs nobody in. On top of the library:
the audience is verified by PyJWT (the library skips it), a nonce is accepted
once only (the library lets the same launch be posted again), and the platform's
JWKS is cached for a few minutes and fetched again when a new key id appears.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from jwcrypto.jwk import JWK
from pylti1p3.contrib.django import DjangoMessageLaunch
from pylti1p3.exception import LtiException

from lti.models import Platform, UsedNonce
from lti.tool_config import DatabaseLaunchDataStorage, DatabaseToolConf, platform_find

logger = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
DEPLOYMENT_ID = CLAIM + "deployment_id"
ROLES = CLAIM + "roles"
RESOURCE_LINK = CLAIM + "resource_link"
CONTEXT = CLAIM + "context"
CUSTOM = CLAIM + "custom"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
SUPPORTED_MESSAGES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)

LEEWAY_S = 30  # clock difference tolerated between the platform and Gradlab
JWKS_CACHE_S = 300
JWKS_TIMEOUT_S = 10


@dataclass
class LaunchError(Exception):
    """A refused launch: `code` for logs and tests, `message` for the person, `status` for HTTP."""

    code: str
    message: str
    status: int = 400

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _jwks_fetch(url: str, *, refresh: bool = False) -> dict[str, Any]:
    cache_key = f"lti-jwks:{url}"
    if not refresh:
        cached = cache.get(cache_key)
        if isinstance(cached, dict):
            return cached
    try:
        response = requests.get(url, timeout=JWKS_TIMEOUT_S, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise LaunchError(
            "platform_keys_unavailable",
            f"Gradlab could not read the platform's public keys at {url} ({error}). Try again in a minute; "
            "if it persists, the LMS administrator should check the JWKS URL registered in Gradlab.",
            status=502,
        ) from error
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise LaunchError("platform_keys_unavailable", f"The platform's JWKS at {url} is not a key set.", status=502)
    cache.set(cache_key, document, JWKS_CACHE_S)
    return document


def platform_public_key(platform: Platform, kid: str, alg: str) -> Any:
    """The platform's public key named `kid` (PEM bytes), fetching its JWKS again once if the kid is new."""
    for refresh in (False, True):
        for key in _jwks_fetch(platform.jwks_url, refresh=refresh)["keys"]:
            if isinstance(key, dict) and key.get("kid") == kid and key.get("alg", "RS256") == alg:
                try:
                    return JWK.from_json(json.dumps(key)).export_to_pem()
                except (ValueError, TypeError) as error:
                    raise LaunchError(
                        "bad_signature", f"The platform's key {kid} cannot be read as an RSA public key."
                    ) from error
    raise LaunchError(
        "bad_signature",
        f"The launch was signed with a key ({kid}) that the platform does not publish at {platform.jwks_url}: "
        "the signature cannot be trusted.",
        status=401,
    )


def missing_claims(body: dict[str, Any]) -> list[str]:
    """Names of the required claims that the token lacks (for its message type)."""
    missing = [name for name in ("iss", "aud", "sub", "nonce", "exp", "iat") if not body.get(name)]
    message_type = body.get(MESSAGE_TYPE)
    for claim, label in ((MESSAGE_TYPE, "message_type"), (VERSION, "version"), (DEPLOYMENT_ID, "deployment_id")):
        if not body.get(claim):
            missing.append(label)
    if ROLES not in body or not isinstance(body.get(ROLES), list):
        missing.append("roles")
    if message_type == RESOURCE_LINK_REQUEST:
        link = body.get(RESOURCE_LINK)
        if not isinstance(link, dict) or not link.get("id"):
            missing.append("resource_link.id")
    if message_type == DEEP_LINKING_REQUEST:
        settings = body.get(DEEP_LINKING_SETTINGS)
        if not isinstance(settings, dict) or not settings.get("deep_link_return_url"):
            missing.append("deep_linking_settings.deep_link_return_url")
    return missing


class GradlabMessageLaunch(DjangoMessageLaunch):
    """pylti1p3's Django launch, validated by `validate` below (and only by it)."""

    platform: Platform | None = None

    def __init__(self, request: HttpRequest, launch_data_storage: DatabaseLaunchDataStorage | None = None) -> None:
        storage = launch_data_storage or DatabaseLaunchDataStorage()
        try:
            super().__init__(request, DatabaseToolConf(), launch_data_storage=storage)
        except LtiException as error:
            # The storage's browser cookie is missing: the login happened elsewhere, or cookies are blocked.
            raise LaunchError(
                "no_login_cookie",
                "Your browser did not send back the cookie Gradlab set when the launch started. "
                "Browsers that block third-party cookies do this inside an LMS frame: open the tool in a new "
                "window, or allow cookies for this site, then launch again.",
                status=401,
            ) from error
        self._storage = storage

    def body(self) -> dict[str, Any]:
        return dict(self._jwt.get("body", {}))

    def validate(self) -> GradlabMessageLaunch:
        if self._restored:
            raise LaunchError("restored", "A stored launch cannot be validated again.")
        self._validated = True
        try:
            self._validate_token_shape()
            self._validate_state()
            body = self.body()
            missing = missing_claims(body)
            if missing:
                raise LaunchError(
                    "missing_claims",
                    "The launch lacks required LTI claims: " + ", ".join(missing) + ". The LMS sent an incomplete "
                    "launch; its administrator should check the tool's configuration.",
                )
            if body.get(MESSAGE_TYPE) not in SUPPORTED_MESSAGES:
                raise LaunchError(
                    "unsupported_message",
                    f"Gradlab does not handle LTI messages of type {body.get(MESSAGE_TYPE)!r}.",
                )
            self._validate_platform(body)
            self._validate_signature()
            self._validate_deployment(body)
            try:
                self.validate_message()
            except LtiException as error:
                raise LaunchError("invalid_message", f"The launch message is not valid LTI 1.3: {error}.") from error
            self._consume_nonce(body)
            self.save_launch_data()
        except Exception:
            self._validated = False
            raise
        return self

    def _validate_token_shape(self) -> None:
        if not self._get_request_param("id_token"):
            raise LaunchError(
                "missing_token", "The launch carried no id_token. Start it again from the LMS.", status=400
            )
        try:
            self.validate_jwt_format()
        except LtiException as error:
            raise LaunchError("malformed_token", f"The id_token is not a readable JWT ({error}).") from error
        if not isinstance(self._jwt.get("body"), dict) or not isinstance(self._jwt.get("header"), dict):
            raise LaunchError("malformed_token", "The id_token's header or body is not a JSON object.")

    def _validate_state(self) -> None:
        state = self._get_request_param("state")
        if not state:
            raise LaunchError("missing_state", "The launch has no state parameter. Start it again from the LMS.")
        if self._cookie_service.get_cookie(state) != state:
            raise LaunchError(
                "state_mismatch",
                "This launch does not match a login started in this browser (the state cookie is missing or "
                "different). It may be a replay, or the browser blocks cookies in the LMS frame: launch again, "
                "or open the tool in a new window.",
                status=401,
            )

    def _validate_platform(self, body: dict[str, Any]) -> None:
        issuer = str(body["iss"])
        audience = body["aud"]
        audiences = [str(a) for a in audience] if isinstance(audience, list) else [str(audience)]
        if not Platform.objects.filter(issuer=issuer, is_active=True).exists():
            raise LaunchError(
                "unknown_platform",
                f"No LMS with issuer {issuer!r} is registered in Gradlab. An administrator registers it in "
                "Gradlab's admin (LTI platforms) or with `manage.py lti_platform add`.",
                status=403,
            )
        platform = None
        for candidate in audiences:
            platform = platform_find(issuer, candidate)
            if platform is not None:
                break
        if platform is None:
            raise LaunchError(
                "wrong_audience",
                f"The launch is addressed to {', '.join(audiences)}, which is not a client id registered "
                f"for {issuer}: it was not meant for this Gradlab.",
                status=403,
            )
        if len(audiences) > 1 and body.get("azp") != platform.client_id:
            raise LaunchError(
                "wrong_audience",
                "The launch names several audiences but its authorized party (azp) is not Gradlab's client id.",
                status=403,
            )
        self.platform = platform
        try:
            self.validate_registration()
        except LtiException as error:
            raise LaunchError("wrong_audience", f"The launch does not fit the registration: {error}.") from error

    def _validate_signature(self) -> None:
        assert self.platform is not None
        header = self._jwt["header"]
        kid, alg = header.get("kid"), header.get("alg")
        if not kid or alg != "RS256":
            raise LaunchError(
                "bad_signature",
                f"The id_token must be signed with RS256 and name its key (kid); it says alg={alg!r}, kid={kid!r}.",
                status=401,
            )
        public_key = platform_public_key(self.platform, str(kid), str(alg))
        try:
            jwt.decode(
                self._get_id_token(),
                public_key,
                algorithms=["RS256"],
                audience=self.platform.client_id,
                issuer=self.platform.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise LaunchError(
                "expired_token",
                "The launch has expired (its id_token's exp is in the past). Launch again from the LMS; if it "
                "keeps happening, the LMS's or Gradlab's clock is wrong.",
                status=401,
            ) from error
        except jwt.ImmatureSignatureError as error:
            raise LaunchError(
                "token_not_yet_valid",
                "The id_token was issued in the future (iat or nbf): the LMS's or Gradlab's clock is wrong.",
                status=401,
            ) from error
        except jwt.InvalidAudienceError as error:
            raise LaunchError(
                "wrong_audience", f"The id_token is not addressed to Gradlab's client id ({error}).", status=403
            ) from error
        except jwt.InvalidIssuerError as error:
            raise LaunchError("unknown_platform", f"The id_token's issuer does not match ({error}).", 403) from error
        except jwt.InvalidSignatureError as error:
            raise LaunchError(
                "bad_signature",
                "The id_token's signature does not verify with the platform's public key: it was altered or "
                "signed by someone else.",
                status=401,
            ) from error
        except jwt.InvalidTokenError as error:
            raise LaunchError("malformed_token", f"The id_token was refused: {error}.", status=401) from error

    def _validate_deployment(self, body: dict[str, Any]) -> None:
        assert self.platform is not None
        deployment_id = str(body[DEPLOYMENT_ID])
        if not self.platform.deployments.filter(deployment_id=deployment_id).exists():
            raise LaunchError(
                "unknown_deployment",
                f"The deployment {deployment_id!r} is not registered for {self.platform.name}. An administrator "
                "adds it to the platform in Gradlab's admin (or `manage.py lti_platform add --deployment-id`).",
                status=403,
            )

    def _consume_nonce(self, body: dict[str, Any]) -> None:
        assert self.platform is not None
        nonce = str(body["nonce"])
        try:
            with transaction.atomic():
                UsedNonce.objects.create(issuer=self.platform.issuer, nonce=nonce[:255])
        except IntegrityError as error:
            raise LaunchError(
                "replayed_nonce",
                "This launch was already used (its nonce has been seen before): a launch works once. "
                "Start again from the LMS.",
                status=401,
            ) from error
        if not self._storage.take_value(self._session_service._get_key("nonce", nonce)):
            raise LaunchError(
                "unknown_nonce",
                "The launch's nonce was not issued by Gradlab for this browser's login: start again from the LMS.",
                status=401,
            )
