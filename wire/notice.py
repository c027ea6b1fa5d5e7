"""
Notices: the only bytes the gateway itself writes into an agent's relay leg.

After C{Join} switches the agent's connection to relay mode, the gateway
sends exactly one notice before any relayed byte: C{PAIRED} when an
operator attaches (relayed bytes follow), or C{CLOSED} with a reason when the
leg is closed before pairing (e.g. no operator picked up).  A notice is one
kind byte, a two-byte big-endian length and that many bytes of UTF-8 reason.
Its first byte can never start a TLS record, so a client that expects a
notice cannot mistake relayed bytes for one.
"""

import struct

import attrs

PAIRED = 0x01
CLOSED = 0x02
_HEADER = struct.Struct("!BH")
MAX_REASON = 1024


class MalformedNotice(ValueError):
    """The bytes at the start of a relay leg are not a notice."""


@attrs.frozen
class Notice:
    """One notice: C{kind} is L{PAIRED} or L{CLOSED}."""

    kind: int
    reason: str = ""


def encode(notice: Notice) -> bytes:
    """Serialise a notice."""
    # Cut to the limit without splitting a character.
    reason = notice.reason.encode("utf-8")[:MAX_REASON].decode("utf-8", "ignore").encode("utf-8")
    return _HEADER.pack(notice.kind, len(reason)) + reason


def decode(buffer: bytes) -> tuple[Notice | None, bytes]:
    """
    Read one notice from the start of C{buffer}.

    @return: the notice and the bytes after it, or C{(None, buffer)} when
        more bytes are needed.
    @raise MalformedNotice: if C{buffer} cannot start with a notice.
    """
    if buffer and buffer[0] not in (PAIRED, CLOSED):
        raise MalformedNotice(f"unexpected first byte {buffer[0]:#04x}")
    if len(buffer) < _HEADER.size:
        return None, buffer
    kind, length = _HEADER.unpack_from(buffer)
    if length > MAX_REASON:
        raise MalformedNotice(f"notice reason of {length} bytes is too long")
    end = _HEADER.size + length
    if len(buffer) < end:
        return None, buffer
    reason = buffer[_HEADER.size : end].decode("utf-8", "replace")
    return Notice(kind, reason), buffer[end:]
