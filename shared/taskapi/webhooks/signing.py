"""Signatures per Standard Webhooks (https://www.standardwebhooks.com): a receiver checks them with
any of its libraries, or with `verify` here (re-exported by the client).

    webhook-id:        the event id, the same on every retry (receivers deduplicate on it)
    webhook-timestamp: epoch seconds of this attempt
    webhook-signature: "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>", one per active
                       secret, space separated (after a rotation both secrets sign for a while)

A secret is "whsec_" + base64 of 32 random bytes; the HMAC key is those bytes. Standard library
only: the client extra imports this module. Never log a secret, a signature or a body."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from taskapi.errors import TaskApiError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(TaskApiError):
    """The webhook's signature does not verify with the secret, or its timestamp is too far from now."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the secret is not whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """ "v1,<base64 signature>" of one message with one secret."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one signature per secret, space separated."""
    signatures = [sign(secret, msg_id, timestamp, body) for secret in secrets]
    if not signatures:
        raise ValueError("a webhook needs at least one secret to be signed")
    return " ".join(signatures)


def _epoch(now: datetime | float | None) -> int:
    if now is None:
        return int(time.time())
    return int(now.timestamp() if isinstance(now, datetime) else now)


def headers(secrets: Iterable[str], msg_id: str, body: bytes, now: datetime | float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt at `now` (a datetime or epoch seconds)."""
    timestamp = _epoch(now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: datetime | float | None = None,
) -> None:
    """Check a received webhook: one of its v1 signatures must be `secret`'s, and its timestamp
    within `tolerance_seconds` of now (a replayed old request is refused). Raises InvalidSignature.
    Header names are matched without regard to case."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise InvalidSignature("the webhook-id, webhook-timestamp or webhook-signature header is missing")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("the webhook-timestamp header is not a number") from None
    if abs(_epoch(now) - timestamp) > tolerance_seconds:
        raise InvalidSignature("the webhook-timestamp is too far from the current time")
    payload = body.encode() if isinstance(body, str) else body
    try:
        expected = sign(secret, msg_id, timestamp, payload).partition(",")[2]
    except ValueError:
        raise InvalidSignature("the secret is not a valid webhook secret") from None
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value.encode(), expected.encode()):
            return
    raise InvalidSignature("no signature matches the secret")
