"""RSA keys the RS256 tests sign with (one JWKS key and one it does not hold), made once per module."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.jwks import generate_rsa_key


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_rsa_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    """A key the JWKS does not hold: its tokens must never verify."""
    return generate_rsa_key()
