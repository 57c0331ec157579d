"""The transport under every endpoint method: credentials, the httpx client, retries, and turning
answers into the server's pydantic models or TaskApiError."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from taskapi.client.errors import error_for
from taskapi.client.retry import Backoff, parse_retry_after, retries_exception, retries_status

logger = logging.getLogger("taskapi.client")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""Bulk calls of 100 tasks run one Lambda invocation each: seconds, not milliseconds."""
USER_AGENT = "taskapi-client"

Params = Mapping[str, str | int]


class BaseClient:
    """Holds the connection and sends requests; the endpoint mixins (tasks, queue, uploads) build
    on `_call`, `_call_as` and `_send`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        account_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if bool(api_key) == bool(token):  # an empty string counts as not given
            raise ValueError("pass exactly one of api_key and token")
        if token and not account_id:
            raise ValueError("a bearer token needs account_id (sent as X-Account-ID)")
        if api_key and account_id:
            raise ValueError("an API key names its own account; account_id goes with token only")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._backoff = Backoff(base=backoff_base, maximum=backoff_max)
        self._sleep = sleep
        self._rand = rand
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if api_key:
            self._headers["X-API-Key"] = api_key
        else:
            self._headers["Authorization"] = f"Bearer {token}"
            self._headers["X-Account-ID"] = str(account_id)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Closes the httpx client if this object made it; an injected one is left to its owner."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ sending
    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Params | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One request, repeated per taskapi.client.retry's rule. Answers the 2xx response; raises
        TaskApiError for any other answer, or the last transport error."""
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, params=params, json=json, headers=self._headers)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries or not retries_exception(exc, idempotent=idempotent):
                    raise
                delay = self._backoff.delay(attempt, retry_after=None, rand=self._rand())
                reason = type(exc).__name__
            else:
                if response.is_success:
                    return response
                if attempt >= self.max_retries or not retries_status(response.status_code, idempotent=idempotent):
                    raise error_for(response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                delay = self._backoff.delay(attempt, retry_after=retry_after, rand=self._rand())
                reason = f"HTTP {response.status_code}"
            attempt += 1
            logger.info(
                "retrying %s %s after %s in %.2fs (retry %d of %d)",
                method,
                path,
                reason,
                delay,
                attempt,
                self.max_retries,
            )
            self._sleep(delay)

    def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        idempotent: bool,
        params: Params | None = None,
        body: BaseModel | None = None,
    ) -> M:
        """_send, with `body` serialized as the user set it (unset fields take the server's
        defaults) and the answer parsed as `model`."""
        response = self._send(method, path, idempotent=idempotent, params=params, json=_dump(body))
        return model.model_validate_json(response.content)

    def _call_as(
        self,
        method: str,
        path: str,
        adapter: TypeAdapter[T],
        *,
        idempotent: bool,
        params: Params | None = None,
        body: BaseModel | None = None,
    ) -> T:
        """_call for answers that are not one model (e.g. list[TaskOut])."""
        response = self._send(method, path, idempotent=idempotent, params=params, json=_dump(body))
        return adapter.validate_json(response.content)


def _dump(body: BaseModel | None) -> Any:
    return None if body is None else body.model_dump(mode="json", exclude_unset=True)
