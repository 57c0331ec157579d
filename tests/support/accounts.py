"""Accounts on usage plans, for tests: the same service code `taskapi accounts enrol` runs."""

from __future__ import annotations

from taskapi.auth.api_keys import AccountEnrolment, ApiKeyStore
from taskapi.auth.gateway import InMemoryUsagePlans
from taskapi.services.keys import enrol_account


def enrol(store: ApiKeyStore, account_id: str, plan: str) -> AccountEnrolment:
    return enrol_account(store, InMemoryUsagePlans(), account_id, plan)
