"""Opaque list cursors. A cursor names the last task a page returned (its created_sk), the
absolute position reached, and the filters it belongs to, so the next page costs only itself."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from taskapi.errors import InvalidRequest

_SORT_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.]+Z#.+$")


@dataclass(frozen=True)
class Cursor:
    after: str
    offset: int
    filters: str
    total: int
    """The first page's total, carried along so that later pages cost only themselves."""

    def encode(self) -> str:
        raw = json.dumps(
            {"v": 1, "a": self.after, "o": self.offset, "f": self.filters, "t": self.total}, separators=(",", ":")
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, *, filters: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            after, offset, filters_seen, total = data["a"], data["o"], data["f"], data["t"]
            # Only what this API issues: a sort key "<created_at>#<task_id>", whole numbers.
            if data.get("v") != 1 or type(offset) is not int or offset < 0 or type(total) is not int or total < 0:
                raise ValueError("unknown cursor version, offset or total")
            if not isinstance(after, str) or not _SORT_KEY.match(after) or not isinstance(filters_seen, str):
                raise ValueError("cursor position is not a sort key")
            cursor = cls(after=after, offset=offset, filters=filters_seen, total=total)
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest("next_token is not a cursor this API issued") from exc
        if cursor.filters != filters:
            raise InvalidRequest("next_token was issued for other filters; repeat the first request's filters")
        return cursor
