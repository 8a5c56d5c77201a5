"""A simulated LMS for the LTI tests: the suite plays Canvas or Moodle.

`SimulatedPlatform` has its own RSA key pair and serves, on 127.0.0.1 (a threaded
http.server on a free port):
- GET  /jwks                          its public keys;
- POST /token                         OAuth2 client credentials: checks Gradlab's signed
                                      client assertion against Gradlab's JWKS, returns a token;
- POST /lineitems/<id>/scores         AGS scores (503 while `down` is set), recorded;
- GET  /memberships                   NRPS members (paged in two, via a Link header).
It signs id_tokens for launches (`id_token`) and can be told to misbehave.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE_LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ROLE_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ROLE_TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
ROLE_MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def new_rsa_key() -> tuple[str, str, str]:
    """(kid, private PEM, public PEM)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return JWK.from_pem(public_pem.encode()).thumbprint(), private_pem, public_pem


@dataclass
class SimulatedPlatform:
    client_id: str = "gradlab-client-1"
    deployment_id: str = "deployment-1"
    context_id: str = "course-101"
    tool_jwks: dict[str, Any] = field(default_factory=dict)  # Gradlab's JWKS, to check client assertions
    down: bool = False
    members: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)  # accepted score posts (path, body)
    refused_posts: int = 0
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kid, self.private_pem, self.public_pem = new_rsa_key()
        # Loaded once: parsing a PEM private key costs about 0.1 s (cryptography checks the key).
        self._private_key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        self.tokens: dict[str, list[str]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # --- the HTTP side ----------------------------------------------------------

    def start(self) -> SimulatedPlatform:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _scopes(self) -> list[str] | None:
                auth = self.headers.get("Authorization", "")
                return platform.tokens.get(auth.removeprefix("Bearer ").strip())

            def do_GET(self) -> None:
                path = urlsplit(self.path)
                if path.path == "/jwks":
                    return self._reply(200, platform.jwks())
                if path.path == "/memberships":
                    if NRPS_SCOPE not in (self._scopes() or []):
                        return self._reply(401, {"error": "no token"})
                    page = parse_qs(path.query).get("page", ["1"])[0]
                    half = (len(platform.members) + 1) // 2
                    members = platform.members[:half] if page == "1" else platform.members[half:]
                    headers = {"Link": f'<{platform.url}/memberships?page=2>; rel="next"'} if page == "1" else {}
                    context = {"id": platform.context_id, "title": "Deep Learning 101"}
                    return self._reply(200, {"id": "m", "context": context, "members": members}, headers)
                return self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                body = self._body()
                if path == "/token":
                    return self._token(parse_qs(body.decode()))
                if path.startswith("/lineitems/") and path.endswith("/scores"):
                    if platform.down:
                        with platform._lock:
                            platform.refused_posts += 1
                        return self._reply(503, {"error": "maintenance"})
                    if SCORE_SCOPE not in (self._scopes() or []):
                        return self._reply(401, {"error": "no token"})
                    if self.headers.get("Content-Type") != "application/vnd.ims.lis.v1.score+json":
                        return self._reply(415, {"error": "wrong content type"})
                    with platform._lock:
                        platform.scores.append({"path": path, "score": json.loads(body)})
                    return self._reply(200, {})
                return self._reply(404, {"error": "not found"})

            def _token(self, form: dict[str, list[str]]) -> None:
                assertion = form.get("client_assertion", [""])[0]
                try:
                    header = jwt.get_unverified_header(assertion)
                    keys = {key["kid"]: key for key in platform.tool_jwks.get("keys", [])}
                    public = JWK.from_json(json.dumps(keys[header["kid"]])).export_to_pem()
                    claims = jwt.decode(assertion, public, algorithms=["RS256"], audience=f"{platform.url}/token")
                    assert claims["iss"] == claims["sub"] == platform.client_id
                except Exception as error:
                    return self._reply(401, {"error": "invalid_client", "detail": str(error)})
                token = uuid.uuid4().hex
                scopes = form.get("scope", [""])[0].split()
                platform.tokens[token] = scopes
                platform.token_requests.append({"scopes": scopes})
                return self._reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def issuer(self) -> str:
        return self.url  # like Moodle: the issuer is the site's URL

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(JWK.from_pem(self.public_pem.encode()).export_public())
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def lineitem_url(self, number: int = 1) -> str:
        return f"{self.url}/lineitems/{number}"

    # --- launches -----------------------------------------------------------------

    def claims(
        self,
        *,
        nonce: str,
        subject: str = "lms-user-1",
        roles: list[str] | None = None,
        message_type: str = "LtiResourceLinkRequest",
        resource_link_id: str = "link-1",
        custom: dict[str, str] | None = None,
        lineitem: int | None = 1,
        return_url: str = "",
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": subject,
            "nonce": nonce,
            "iat": now,
            "exp": now + 300,
            "given_name": "Ada",
            "family_name": "Lovelace",
            "email": "ada@lms.example",
            LTI + "message_type": message_type,
            LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id,
            LTI + "roles": roles if roles is not None else [ROLE_LEARNER],
            LTI + "context": {"id": self.context_id, "title": "Deep Learning 101", "label": "DL101"},
            LTI + "target_link_uri": "https://gradlab.example/lti/launch/",
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.url}/memberships",
                "service_versions": ["2.0"],
            },
        }
        if message_type == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = {"id": resource_link_id, "title": "Backprop homework"}
            ags: dict[str, Any] = {"scope": [SCORE_SCOPE, LINEITEM_SCOPE], "lineitems": f"{self.url}/lineitems"}
            if lineitem is not None:
                ags["lineitem"] = self.lineitem_url(lineitem)
            claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = ags
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": return_url or f"{self.url}/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
                "data": "opaque-platform-data",
            }
        if custom:
            claims[LTI + "custom"] = custom
        return claims

    def sign(self, claims: dict[str, Any], *, private_pem: str | None = None, kid: str | None = None) -> str:
        key: Any = private_pem or self._private_key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or self.kid})
