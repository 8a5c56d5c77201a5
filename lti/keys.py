"""Gradlab's own RSA key pairs: creation, rotation, and the public JWKS.

The key id (kid) is the RFC 7638 thumbprint of the public key, so it is stable and
needs no bookkeeping. Rotation keeps the previous key published: a platform that
fetched the JWKS before the rotation still verifies what was signed a moment ago.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction
from django.utils import timezone
from jwcrypto.jwk import JWK

from lti.models import KeyStatus, ToolKey

KEY_SIZE_BITS = 2048


def _new_key_pair() -> tuple[str, str, str]:
    """Return (kid, private PEM, public PEM) of a fresh RSA key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE_BITS)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    kid = JWK.from_pem(public_pem.encode()).thumbprint()
    return kid, private_pem, public_pem


@transaction.atomic
def key_rotate() -> ToolKey:
    """Make a new current key; the current one becomes previous, the previous one retired. Return the new key."""
    now = timezone.now()
    ToolKey.objects.select_for_update().filter(status=KeyStatus.PREVIOUS).update(
        status=KeyStatus.RETIRED, retired_at=now
    )
    ToolKey.objects.filter(status=KeyStatus.CURRENT).update(status=KeyStatus.PREVIOUS)
    kid, private_pem, public_pem = _new_key_pair()
    return ToolKey.objects.create(
        kid=kid, private_key_pem=private_pem, public_key_pem=public_pem, status=KeyStatus.CURRENT
    )


def key_current() -> ToolKey:
    """The key that signs; made on first use."""
    key = ToolKey.objects.filter(status=KeyStatus.CURRENT).first()
    if key is not None:
        return key
    kid, private_pem, public_pem = _new_key_pair()
    try:
        with transaction.atomic():
            return ToolKey.objects.create(kid=kid, private_key_pem=private_pem, public_key_pem=public_pem)
    except IntegrityError:
        # Two first uses at once: the unique "one current key" constraint let the other one win.
        return ToolKey.objects.get(status=KeyStatus.CURRENT)


def public_jwk(key: ToolKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(JWK.from_pem(key.public_key_pem.encode()).export_public())
    jwk.update(kid=key.kid, alg="RS256", use="sig")
    return jwk


def jwks() -> dict[str, list[dict[str, Any]]]:
    """The JWKS document: the current key first, then the previous one (if any)."""
    key_current()
    keys = ToolKey.objects.filter(status__in=[KeyStatus.CURRENT, KeyStatus.PREVIOUS]).order_by("status")
    return {"keys": [public_jwk(key) for key in keys]}
