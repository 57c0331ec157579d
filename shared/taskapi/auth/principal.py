from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthMethod = Literal["jwt", "api_key"]
Role = Literal["tenant", "operator"]
ROLES: tuple[Role, ...] = ("tenant", "operator")
TENANT: Role = "tenant"
OPERATOR: Role = "operator"


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
    role: Role = TENANT
    """tenant: acts on its account's tasks and sees figures about them only. operator: may also
    act on or see what concerns every tenant (processing control, real queue depths)."""

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR
