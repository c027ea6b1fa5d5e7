"""
The downstream framing of the HTTPS request tunnel, shared by the gateway
and the clients.

A download response body is a sequence of frames: one type byte, the
stream offset of the payload (8 bytes, big-endian), the payload length
(4 bytes) and the payload.  C{DATA} frames carry stream bytes; C{KEEPALIVE}
frames (offset = bytes sent so far, no payload) keep proxies from timing
the response out and never reach the stream.  Offsets make a retried or
re-requested download idempotent: a client drops what it already has.
"""

import struct

DATA = 1
KEEPALIVE = 2
_HEADER = struct.Struct("!BQI")
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD = 1 << 20


class FrameError(ValueError):
    """The download is not a valid frame sequence."""


def frame(kind: int, offset: int, payload: bytes = b"") -> bytes:
    """One frame."""
    return _HEADER.pack(kind, offset, len(payload)) + payload


class FrameReader:
    """
    Reassembles the stream from frames; C{feed} returns the new stream
    bytes (never one twice), and C{position} is how many it has delivered.
    """

    def __init__(self, position: int = 0):
        self.position = position
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Add received bytes; return the stream bytes not seen before."""
        self._buffer += data
        out = []
        while len(self._buffer) >= HEADER_SIZE:
            kind, offset, length = _HEADER.unpack_from(self._buffer)
            if kind not in (DATA, KEEPALIVE) or length > MAX_PAYLOAD:
                raise FrameError(f"bad frame header (type {kind}, length {length})")
            end = HEADER_SIZE + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[HEADER_SIZE:end])
            del self._buffer[:end]
            if kind == KEEPALIVE:
                continue
            if offset > self.position:
                raise FrameError(f"gap in the stream: expected offset {self.position}, got {offset}")
            fresh = payload[self.position - offset :]
            self.position += len(fresh)
            if fresh:
                out.append(fresh)
        return b"".join(out)

    def reset(self) -> None:
        """Forget a partial frame (the response it came in has ended)."""
        self._buffer.clear()
