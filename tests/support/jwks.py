"""A JWKS endpoint on loopback and RS256 tokens signed with a local RSA key, for tests that verify
bearer tokens the way AWS does (Cognito-style JWKS URL). Loopback sockets: integration tests only
(unit tests block sockets).

    key = generate_rsa_key()
    with JwksServer([rsa_jwk(key, "kid-1")]) as jwks:
        token = make_rsa_token(key, "kid-1", {"sub": "u", ...})
        ...  # TASKAPI_JWT_JWKS_URL=jwks.url
        assert jwks.requests == 1

Tokens are encoded and signed here by hand, not by PyJWT, so tests can build tokens PyJWT refuses
to make (alg none, HS256 keyed with an RSA public key) and do not trust the library under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWKS_PATH = "/.well-known/jwks.json"


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def rsa_jwk(key: rsa.RSAPrivateKey | rsa.RSAPublicKey, kid: str, **members: Any) -> dict[str, Any]:
    """The public JWK of key, as Cognito publishes it (kty, kid, alg RS256, use sig, n, e).
    members override or add fields; a member set to None is left out."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    numbers = public.public_numbers()
    jwk: dict[str, Any] = {
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }
    jwk.update(members)
    return {name: value for name, value in jwk.items() if value is not None}


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def cognito_claims(*, sub: str, accounts: list[str], issuer: str, audience: str, **overrides: Any) -> dict[str, Any]:
    """Cognito ID-token-like claims plus the service's `accounts`, valid for ten minutes; an
    override of None drops that claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": sub,
        "accounts": accounts,
        "iss": issuer,
        "aud": audience,
        "token_use": "id",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HMAC_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def make_rsa_token(
    private_key: Any,
    kid: str | None,
    claims: dict[str, Any],
    alg: str = "RS256",
    *,
    headers: dict[str, Any] | None = None,
) -> str:
    """A compact JWS of claims. kid None leaves the kid out of the header.

    alg RS256/384/512 and PS256/384/512 sign with private_key (an RSA private key); HS256/384/512
    use private_key as the HMAC secret (bytes or str: pass public_pem(key) for the key-confusion
    attack); "none" has an empty signature and ignores private_key. headers add to the header."""
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    header.update(headers or {})
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    ).encode("ascii")
    family, bits = alg[:2], alg[2:]
    if alg == "none":
        signature = b""
    elif family == "HS" and bits in _HMAC_HASHES:
        secret = private_key.encode() if isinstance(private_key, str) else bytes(private_key)
        signature = hmac.new(secret, signing_input, _HMAC_HASHES[bits]).digest()
    elif family == "RS" and bits in _HASHES:
        signature = private_key.sign(signing_input, padding.PKCS1v15(), _HASHES[bits]())
    elif family == "PS" and bits in _HASHES:
        digest = _HASHES[bits]()
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        signature = private_key.sign(signing_input, pss, digest)
    else:
        raise ValueError(f"make_rsa_token cannot sign with alg {alg!r}")
    return signing_input.decode("ascii") + "." + _b64url(signature)


class JwksServer:
    """{"keys": [...]} served over HTTP on 127.0.0.1 (a free port) from a daemon thread.

    .url is the JWKS URL, .requests counts the requests received (any path), .set_keys replaces
    the published keys (a rotation), .fail_with makes every response a given status and body
    (an outage or garbage) until set_keys is called again. Use as a context manager, or call
    start() and stop()."""

    def __init__(self, keys: list[dict[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: list[dict[str, Any]] = list(keys or [])
        self._failure: tuple[int, bytes] | None = None
        self._requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- what it serves
    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def set_keys(self, keys: list[dict[str, Any]]) -> None:
        with self._lock:
            self._keys = list(keys)
            self._failure = None

    def fail_with(self, status: int, body: bytes | str = b"") -> None:
        with self._lock:
            self._failure = (status, body.encode() if isinstance(body, str) else body)

    def _respond(self) -> tuple[int, bytes, str]:
        with self._lock:
            self._requests += 1
            if self._failure is not None:
                status, body = self._failure
                return status, body, "text/plain"
            return 200, json.dumps({"keys": self._keys}).encode(), "application/json"

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("JwksServer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{JWKS_PATH}"

    def start(self) -> JwksServer:
        if self._server is not None:
            return self
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, content_type = owner._respond()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="jwks-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
