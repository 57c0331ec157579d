"""A getaddrinfo stand-in for the media fetcher's tests: names resolve from a fixed table, every
lookup is recorded, and nothing touches DNS."""

from __future__ import annotations

import socket


class FakeResolver:
    """getaddrinfo over a fixed table; records every lookup."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *_: object) -> list[tuple]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in self.table[host]
        ]
