"""Opaque list cursors. A cursor names the last task a page returned (its created_sk), the
absolute position reached, and the filters it belongs to, so the next page costs only itself."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from taskapi.errors import InvalidRequest


@dataclass(frozen=True)
class Cursor:
    after: str
    offset: int
    filters: str

    def encode(self) -> str:
        raw = json.dumps({"v": 1, "a": self.after, "o": self.offset, "f": self.filters}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, *, filters: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            cursor = cls(after=str(data["a"]), offset=int(data["o"]), filters=str(data["f"]))
            if data.get("v") != 1 or cursor.offset < 0:
                raise ValueError("unknown cursor version")
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest("next_token is not a cursor this API issued") from exc
        if cursor.filters != filters:
            raise InvalidRequest("next_token was issued for other filters; repeat the first request's filters")
        return cursor
