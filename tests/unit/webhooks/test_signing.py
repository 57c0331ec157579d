"""Our signatures are Standard Webhooks signatures: a receiver using the reference library
(standardwebhooks) accepts them. Our own `verify` (what the client re-exports) is checked against
the same rules, not used to check our signing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from taskapi.webhooks.signing import InvalidSignature, headers, new_secret, sign, signature_header, verify

BODY = b'{"id":"evt_20260101000000000000_0123456789abcdef","type":"task.completed","data":{"n":1}}'
MSG_ID = "evt_20260101000000000000_0123456789abcdef"


def test_a_new_secret_is_whsec_and_32_random_bytes():
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


def test_the_reference_library_accepts_our_headers():
    secret = new_secret()

    sent = headers([secret], MSG_ID, BODY)

    assert Webhook(secret).verify(BODY, sent) == json.loads(BODY)
    assert sent["webhook-id"] == MSG_ID


def test_after_a_rotation_both_secrets_sign_and_either_verifies():
    old, new = new_secret(), new_secret()

    sent = headers([new, old], MSG_ID, BODY)

    assert len(sent["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, sent)
    Webhook(new).verify(BODY, sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


def test_a_changed_body_or_id_does_not_verify_with_the_reference_library():
    secret = new_secret()
    sent = headers([secret], MSG_ID, BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"1", b"2"), sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**sent, "webhook-id": "evt_other"})


def test_the_signature_matches_the_reference_librarys_own_for_the_same_input():
    secret = new_secret()
    timestamp = datetime(2026, 1, 1, tzinfo=UTC)

    ours = sign(secret, MSG_ID, int(timestamp.timestamp()), BODY)

    assert ours == Webhook(secret).sign(MSG_ID, timestamp, BODY.decode())


def test_headers_carry_the_timestamp_of_now():
    now = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)

    sent = headers([new_secret()], MSG_ID, BODY, now)

    assert sent["webhook-timestamp"] == str(int(now.timestamp()))


def test_signing_without_a_secret_is_an_error_not_an_unsigned_webhook():
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], MSG_ID, 1, BODY)


# ------------------------------------------------------------------ our verify (the client's)


def test_verify_accepts_what_the_reference_library_signs():
    secret = new_secret()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    signature = Webhook(secret).sign(MSG_ID, now, BODY.decode())
    received = {"Webhook-Id": MSG_ID, "Webhook-Timestamp": str(int(now.timestamp())), "Webhook-Signature": signature}

    verify(received, BODY, secret, now=now)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h, b: (h, b + b" "), "no signature matches"),
        (lambda h, b: ({**h, "webhook-id": "evt_x"}, b), "no signature matches"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b), "no signature matches"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not a number"),
    ],
)
def test_verify_refuses_a_tampered_webhook(change, why):
    secret = new_secret()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    received, body = change(headers([secret], MSG_ID, BODY, now), BODY)

    with pytest.raises(InvalidSignature, match=why):
        verify(received, body, secret, now=now)


def test_verify_refuses_another_secret_and_an_old_timestamp():
    secret = new_secret()
    sent_at = datetime(2026, 1, 1, tzinfo=UTC)
    received = headers([secret], MSG_ID, BODY, sent_at)

    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify(received, BODY, new_secret(), now=sent_at)
    with pytest.raises(InvalidSignature, match="too far"):
        verify(received, BODY, secret, now=sent_at.timestamp() + 301)
    verify(received, BODY, secret, now=sent_at.timestamp() + 299)


def test_the_documented_retry_schedule_is_the_settings_default() -> None:
    from taskapi.settings import Settings
    from taskapi.webhooks.delivery import RETRY_DELAYS

    assert Settings().webhook_retry_delays_seconds == RETRY_DELAYS
    assert round(sum(RETRY_DELAYS) / 3600) == 28  # about 28 h, as the README says
