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
