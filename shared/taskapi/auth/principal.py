from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthMethod = Literal["jwt", "api_key"]


@dataclass(frozen=True)
class Principal:
    """Who is calling, and for which account. Every service call is scoped by account_id."""

    account_id: str
    user_id: str
    auth_method: AuthMethod
    plan: str | None = None
    """The usage plan the caller is metered on (free, standard, enterprise); None when the
    credentials do not say (a bearer token verified outside API Gateway): the account's
    enrolment, or the default plan, applies."""
