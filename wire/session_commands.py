"""
AMP commands of the session protocol, spoken between console and agent
inside the end-to-end TLS channel (the gateway relays them without being
able to read them).  C{docs/protocol.md} ("Session protocol") describes
each command, who sends it, its errors and limits.

Nothing but L{Pake} and L{Confirm} is accepted before the code is
confirmed; after that the agent checks every privileged command against the
customer's grants.
"""

import json
import zlib

import attrs
from twisted.protocols.amp import (
    AmpList,
    Argument,
    Boolean,
    String,
    Command,
    Float,
    Integer,
    ListOf,
    Unicode,
)

SESSION_PROTOCOL_VERSION = 1

# What the customer can grant.  "send_file" is the operator sending a file
# to the customer; "receive_file" the operator receiving one from them.
VIEW = "view"
CONTROL = "control"
SEND_FILE = "send_file"
RECEIVE_FILE = "receive_file"
SYSTEM_INFO = "system_info"
SHELL = "shell"
CLIPBOARD = "clipboard"
SCOPES = (VIEW, CONTROL, SEND_FILE, RECEIVE_FILE, SYSTEM_INFO, SHELL, CLIPBOARD)


MAX_BIG_VALUE = 1024 * 1024


@attrs.frozen
class SessionLimits:
    """The limits of the session protocol; both ends enforce them on what they receive."""

    max_chunk: int = 60 * 1024
    max_box_bytes: int = 2 * 1024 * 1024
    max_chat_chars: int = 4000
    max_file_size: int = 4 * 1024**3
    file_window: int = 16
    max_transfers: int = 8
    max_shells: int = 4
    max_tiles_per_update: int = 64
    confirm_timeout: float = 30.0
    wrap_up_timeout: float = 300.0
    max_comment_chars: int = 2000


# -- errors --------------------------------------------------------------------


class SessionError(Exception):
    """Base of the session protocol's errors; the message is for a person."""


class VersionMismatch(SessionError):
    """The two ends speak different session protocol versions."""


class NotVerified(SessionError):
    """A session command came before the code was confirmed."""


class CodeMismatch(SessionError):
    """The agent's proof shows another code."""


class ChannelMismatch(SessionError):
    """The agent's proof shows the same code on another TLS channel."""


class NotGranted(SessionError):
    """The customer has not granted (or has revoked) the scope this needs."""


class Refused(SessionError):
    """The peer (or its user) said no."""


class BadRequest(SessionError):
    """A value is out of range, too large, unknown or malformed."""


class UnknownTransfer(SessionError):
    """No transfer has this id (any more)."""


class TransferFailed(SessionError):
    """A transfer cannot go on: wrong offset, size or hash, or a full disk."""


class UnknownShell(SessionError):
    """No shell has this id (any more)."""


_BASE = {NotVerified: b"NOT_VERIFIED", BadRequest: b"BAD_REQUEST"}
_GRANTED = {**_BASE, NotGranted: b"NOT_GRANTED"}


# -- a value larger than one AMP value ------------------------------------------


class BigJSON(Argument):
    """
    A JSON value of up to L{MAX_BIG_VALUE} bytes once
    compressed, split across as many AMP keys as it needs (each AMP value
    holds at most 64 KiB).
    """

    _PIECE = 60 * 1024

    def __init__(self, limit: int = MAX_BIG_VALUE):
        super().__init__()
        self.limit = limit

    def toBox(self, name, strings, objects, proto):
        data = zlib.compress(json.dumps(objects[name.decode("ascii")]).encode("utf-8"))
        if len(data) > self.limit:
            raise BadRequest(f"value of {len(data)} bytes is larger than {self.limit}")
        pieces = [data[i : i + self._PIECE] for i in range(0, len(data), self._PIECE)] or [b""]
        strings[name] = str(len(pieces)).encode("ascii")
        for index, piece in enumerate(pieces):
            strings[name + b".%d" % index] = piece

    def fromBox(self, name, strings, objects, proto):
        try:
            count = int(strings[name])
            if not 0 < count <= self.limit // self._PIECE + 1:
                raise ValueError(f"{count} pieces")
            data = b"".join(strings[name + b".%d" % i] for i in range(count))
            inflater = zlib.decompressobj()
            text = inflater.decompress(data, 16 * self.limit)
            if inflater.unconsumed_tail:
                raise ValueError("too large once decompressed")
            objects[name.decode("ascii")] = json.loads(text)
        except (KeyError, ValueError, zlib.error) as e:
            raise BadRequest(f"malformed {name.decode('ascii')}: {e}") from e


# -- code confirmation -----------------------------------------------------------


class Pake(Command):
    """Agent → console: the protocol version and the agent's SPAKE2 message; answered in kind."""

    arguments = [(b"version", Integer()), (b"message", String())]
    response = [(b"version", Integer()), (b"message", String())]
    errors = {VersionMismatch: b"VERSION_MISMATCH", CodeMismatch: b"CODE_MISMATCH"}


class Confirm(Command):
    """
    Agent → console: the agent's code and channel MACs.  The console checks
    them before answering with its own.
    """

    arguments = [(b"code_mac", String()), (b"channel_mac", String())]
    response = [(b"code_mac", String()), (b"channel_mac", String())]
    errors = {CodeMismatch: b"CODE_MISMATCH", ChannelMismatch: b"CHANNEL_MISMATCH"}


# -- consent ---------------------------------------------------------------------


class RequestConsent(Command):
    """
    Console → agent: ask the customer for scopes (all of them in one prompt
    when C{everything}); C{duration} seconds, 0 for the whole session.
    Answered once the customer has decided, with the scopes now granted.
    """

    arguments = [
        (b"scopes", ListOf(Unicode())),
        (b"everything", Boolean()),
        (b"duration", Float()),
    ]
    response = [(b"granted", ListOf(Unicode())), (b"denied", ListOf(Unicode()))]
    errors = _BASE


class GrantsChanged(Command):
    """Agent → console: every scope granted right now, sent on each change."""

    arguments = [
        (b"grants", AmpList([(b"scope", Unicode()), (b"expires_at", Float(optional=True))])),
        (b"reason", Unicode()),
    ]
    requiresAnswer = False


# -- chat ----------------------------------------------------------------------


class Chat(Command):
    """Either way: one chat message and when its author sent it (Unix time)."""

    arguments = [(b"text", Unicode()), (b"sent_at", Float())]
    response: list = []
    errors = _BASE


# -- files ---------------------------------------------------------------------


class OfferFile(Command):
    """
    Either way: the sender offers a file.  The receiver answers with the
    offset to start from (non-zero when resuming) or refuses.
    """

    arguments = [
        (b"transfer_id", Unicode()),
        (b"name", Unicode()),
        (b"size", Integer()),
        (b"sha256", Unicode()),
    ]
    response = [(b"offset", Integer())]
    errors = {**_GRANTED, Refused: b"REFUSED", TransferFailed: b"TRANSFER_FAILED"}


_TRANSFER = {
    **_GRANTED,
    Refused: b"REFUSED",
    UnknownTransfer: b"UNKNOWN_TRANSFER",
    TransferFailed: b"TRANSFER_FAILED",
}


class FileChunk(Command):
    """Either way: at most 60 KiB of an accepted transfer at C{offset}."""

    arguments = [(b"transfer_id", Unicode()), (b"offset", Integer()), (b"data", String())]
    response: list = []
    errors = _TRANSFER


class FileDone(Command):
    """Either way: all chunks sent; the receiver checks size and SHA-256."""

    arguments = [(b"transfer_id", Unicode())]
    response: list = []
    errors = _TRANSFER


class CancelTransfer(Command):
    """Either way: stop a transfer; the receiver deletes the partial file."""

    arguments = [(b"transfer_id", Unicode()), (b"reason", Unicode())]
    requiresAnswer = False


class RequestFile(Command):
    """
    Console → agent: ask the customer to pick a file to send; the agent
    then offers it under C{transfer_id}, or cancels that id.
    """

    arguments = [(b"transfer_id", Unicode()), (b"prompt", Unicode())]
    response: list = []
    errors = _GRANTED


# -- system information --------------------------------------------------------


class GetSystemInfo(Command):
    """Console → agent: the customer's system information (see L{wire.sysinfo})."""

    arguments: list = []
    response = [(b"info", BigJSON())]
    errors = _GRANTED


# -- shell ---------------------------------------------------------------------


class OpenShell(Command):
    """Console → agent: start the customer's shell in a terminal of this size."""

    arguments = [(b"shell_id", Unicode()), (b"columns", Integer()), (b"rows", Integer())]
    response: list = []
    errors = {**_GRANTED, Refused: b"REFUSED"}


class ShellInput(Command):
    """Console → agent: bytes typed into the shell."""

    arguments = [(b"shell_id", Unicode()), (b"data", String())]
    response: list = []
    errors = {**_GRANTED, UnknownShell: b"UNKNOWN_SHELL"}


class ShellOutput(Command):
    """Agent → console: bytes the shell wrote."""

    arguments = [(b"shell_id", Unicode()), (b"data", String())]
    response: list = []
    errors = {**_BASE, UnknownShell: b"UNKNOWN_SHELL"}


class ResizeShell(Command):
    """Console → agent: the terminal's new size."""

    arguments = [(b"shell_id", Unicode()), (b"columns", Integer()), (b"rows", Integer())]
    response: list = []
    errors = {**_GRANTED, UnknownShell: b"UNKNOWN_SHELL"}


class CloseShell(Command):
    """Console → agent: end the shell."""

    arguments = [(b"shell_id", Unicode())]
    response: list = []
    errors = {**_BASE, UnknownShell: b"UNKNOWN_SHELL"}


class ShellExited(Command):
    """Agent → console: the shell ended, with its exit status (or the signal that ended it)."""

    arguments = [
        (b"shell_id", Unicode()),
        (b"status", Integer(optional=True)),
        (b"signal", Integer(optional=True)),
    ]
    requiresAnswer = False


# -- screen and input ---------------------------------------------------------------


class ListMonitors(Command):
    """Console → agent: the customer's monitors."""

    arguments: list = []
    response = [
        (
            b"monitors",
            AmpList(
                [
                    (b"index", Integer()),
                    (b"left", Integer()),
                    (b"top", Integer()),
                    (b"width", Integer()),
                    (b"height", Integer()),
                    (b"primary", Boolean()),
                ]
            ),
        )
    ]
    errors = _GRANTED


class RequestFrames(Command):
    """
    Console → agent: send up to C{credit} more frame updates of monitor
    C{monitor} (flow control: no credit, no frames).
    """

    arguments = [(b"monitor", Integer()), (b"credit", Integer())]
    response: list = []
    errors = _GRANTED


TILE = [
    (b"x", Integer()),
    (b"y", Integer()),
    (b"width", Integer()),
    (b"height", Integer()),
    (b"encoding", Unicode()),
    (b"data", String()),
]


class FrameUpdate(Command):
    """
    Agent → console: tiles of frame C{frame}; a frame may take several
    updates, the last one has C{last} set (and spends one credit).
    """

    arguments = [
        (b"frame", Integer()),
        (b"monitor", Integer()),
        (b"width", Integer()),
        (b"height", Integer()),
        (b"tiles", AmpList(TILE)),
        (b"last", Boolean()),
    ]
    response: list = []
    errors = _BASE


class CursorUpdate(Command):
    """Agent → console: where the pointer is, and its shape when it changed."""

    arguments = [
        (b"x", Integer()),
        (b"y", Integer()),
        (b"visible", Boolean()),
        (b"shape", Unicode(optional=True)),
    ]
    requiresAnswer = False


class Input(Command):
    """
    Console → agent: one input event.  C{kind} is C{move} (x, y), C{button}
    (x, y, button, pressed), C{wheel} (dx, dy) or C{key} (key, pressed); the
    agent drops it unless control is granted.
    """

    arguments = [
        (b"kind", Unicode()),
        (b"x", Integer(optional=True)),
        (b"y", Integer(optional=True)),
        (b"button", Unicode(optional=True)),
        (b"dx", Integer(optional=True)),
        (b"dy", Integer(optional=True)),
        (b"key", Unicode(optional=True)),
        (b"pressed", Boolean(optional=True)),
    ]
    response: list = []
    errors = _GRANTED


# -- clipboard and end -------------------------------------------------------------


class Clipboard(Command):
    """Either way: the clipboard's text (needs the clipboard grant)."""

    arguments = [(b"text", Unicode())]
    response: list = []
    errors = _GRANTED


class End(Command):
    """
    Either way: the session ends, and why.  Nothing of the session runs
    after it; the channel stays open for L{Rate} until the agent closes it.
    """

    arguments = [(b"reason", Unicode())]
    requiresAnswer = False


class Rate(Command):
    """Agent → console, after L{End}: the customer's rating (1 to 5) and comment."""

    arguments = [(b"stars", Integer()), (b"comment", Unicode())]
    response: list = []
    errors = _BASE
