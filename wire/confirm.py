"""
Code confirmation: proof that the peer at the other end of the end-to-end
TLS channel knows the whole session code, and sits on the same channel.

Both sides run SPAKE2 on the whole code (routing part and the secret part
the gateway never sees).  From the shared key each side then sends two MACs:

- a code MAC, which only a peer that used the same code can make: a wrong
  code (or an attacker who guessed) fails here;
- a channel MAC over the inner TLS exporter, which differs on each side of a
  relay that terminated the TLS: a gateway in the middle that forwarded the
  SPAKE2 messages unchanged fails here.

The console checks the agent's MACs first and only then sends its own, so
a party that fails learns nothing it could test a second guess against.
"""

import hashlib
import hmac

from spake2 import SPAKE2_A, SPAKE2_B
from spake2.spake2 import SPAKEError

AGENT = "agent"
CONSOLE = "console"
EXPORTER_LABEL = b"EXPORTER-ponte-code-confirmation"
EXPORTER_LENGTH = 32
_IDS = dict(idA=b"ponte agent", idB=b"ponte console")


class ConfirmationFailed(Exception):
    """The peer's proof did not check out; the subclass says which part."""


class CodeMismatch(ConfirmationFailed):
    """The peer used a different code (a typo, or someone guessing)."""


class ChannelMismatch(ConfirmationFailed):
    """The peer knows the code but is not on our TLS channel: interception."""


def _mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"\x00".join(parts), hashlib.sha256).digest()


class Confirmation:
    """One side's run of the confirmation for one session."""

    def __init__(self, side: str, code: str, exporter: bytes):
        if side not in (AGENT, CONSOLE):
            raise ValueError(f"unknown side {side!r}")
        self.side = side
        self._peer_side = CONSOLE if side == AGENT else AGENT
        self._exporter = exporter
        spake = SPAKE2_A if side == AGENT else SPAKE2_B
        self._spake = spake(code.encode("ascii"), **_IDS)
        self._key: bytes | None = None

    def start(self) -> bytes:
        """Our SPAKE2 message."""
        return self._spake.start()

    def finish(self, peer_message: bytes) -> None:
        """
        Take the peer's SPAKE2 message.

        @raise CodeMismatch: if the message is malformed (it cannot come
            from an honest peer).
        """
        try:
            self._key = self._spake.finish(peer_message)
        except (SPAKEError, ValueError) as e:
            raise CodeMismatch(f"malformed key exchange message: {e}") from e

    def _proof(self, side: str) -> tuple[bytes, bytes]:
        if self._key is None:
            raise RuntimeError("finish() must come first")
        side_bytes = side.encode("ascii")
        return (
            _mac(self._key, b"code", side_bytes),
            _mac(self._key, b"channel", side_bytes, self._exporter),
        )

    def proof(self) -> tuple[bytes, bytes]:
        """Our code MAC and channel MAC."""
        return self._proof(self.side)

    def check(self, code_mac: bytes, channel_mac: bytes) -> None:
        """
        Check the peer's MACs, in constant time.

        @raise CodeMismatch: the peer used another code.
        @raise ChannelMismatch: same code, different TLS channel.
        """
        expected_code, expected_channel = self._proof(self._peer_side)
        if not hmac.compare_digest(expected_code, code_mac):
            raise CodeMismatch("the code does not match")
        if not hmac.compare_digest(expected_channel, channel_mac):
            raise ChannelMismatch("the code matches but the channel does not: interception")
