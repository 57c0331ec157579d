"""The byte stream every parser of taskapi.ingest reads: the body of an upload, without its byte
order mark, read in chunks of READ_SIZE bytes and counted."""

from __future__ import annotations

import io
from typing import Any, Final

from taskapi.ingest.rows import READ_SIZE, Readable

_BOM: Final = b"\xef\xbb\xbf"


class Source(io.RawIOBase):
    """Anything with read(n) as a raw binary stream: drops a leading UTF-8 byte order mark and
    counts the bytes handed on. With ``token_limit`` set, it answers end of file once that many
    bytes have been read since the last ``mark()`` (and says so in ``overrun``)."""

    def __init__(self, stream: Readable) -> None:
        super().__init__()
        self._stream = stream
        self._pending = b""
        self._started = False
        self.consumed = 0
        self._mark = 0
        self.token_limit: int | None = None
        self.overrun = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.chunk(len(view))
        view[: len(data)] = data
        return len(data)

    def mark(self) -> None:
        self._mark = self.consumed

    def chunk(self, size: int = READ_SIZE) -> bytes:
        """Up to ``size`` bytes; b"" only at the end."""
        if not self._started:
            self._started = True
            head = b""
            while len(head) < len(_BOM):
                more = self._stream.read(READ_SIZE)
                if not more:
                    break
                head += more
            self._pending = head.removeprefix(_BOM)
        if self.token_limit is not None and self.consumed - self._mark > self.token_limit:
            self.overrun = True
            return b""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
        else:
            data = bytes(self._stream.read(size))
            if len(data) > size:
                data, self._pending = data[:size], data[size:]
        self.consumed += len(data)
        return data
