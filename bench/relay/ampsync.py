"""
A tiny blocking client of the gateway protocol (AMP over TLS) for the
benchmark: the setup commands only, none of Twisted's machinery at run time.

An AMP box is a sequence of (2-byte big-endian length, key) then (2-byte
length, value) pairs ended by a zero-length key.  Arguments and answers are
encoded and decoded with the command classes of L{wire.commands}, so the
types on the wire are exactly the gateway's.
"""

import collections
import contextlib
import struct

from twisted.protocols.amp import AmpBox

from bench.relay import endpoints
from wire import commands, notice

_LENGTH = struct.Struct("!H")
# The operator events the gateway may send on a control connection.
_EVENTS = {
    command.commandName: command
    for command in (
        commands.CustomerWaiting,
        commands.CustomerLeft,
        commands.CodeTimedOut,
        commands.SessionEnded,
    )
}


class GatewayRefused(Exception):
    """The gateway answered a command with an error: C{code} and C{description}."""

    def __init__(self, command: str, code: str, description: str):
        super().__init__(f"{command} refused: {code}: {description}")
        self.code = code


class AmpChannel:
    """AMP boxes over one blocking TLS socket, with operator events queued."""

    def __init__(self, sock):
        self.sock = sock
        self._buffer = bytearray()
        self._tag = 0
        self.events: collections.deque = collections.deque()

    # -- sending ---------------------------------------------------------

    def _box(self, command, arguments: dict) -> tuple[bytes, bytes]:
        self._tag += 1
        tag = str(self._tag).encode("ascii")
        box = command.makeArguments(arguments, None)
        box[b"_command"] = command.commandName
        box[b"_ask"] = tag
        return tag, AmpBox(box).serialize()

    def send(self, *calls: tuple) -> list[bytes]:
        """
        Send several C{(command, arguments)} in one write (pipelined);
        returns their tags for L{answer}.
        """
        tags, data = [], []
        for command, arguments in calls:
            tag, wire = self._box(command, arguments)
            tags.append(tag)
            data.append(wire)
        self.sock.sendall(b"".join(data))
        return tags

    def call(self, command, **arguments) -> dict:
        """Send one command and wait for its answer."""
        (tag,) = self.send((command, arguments))
        return self.answer(command, tag)

    # -- receiving -------------------------------------------------------

    def answer(self, command, tag: bytes) -> dict:
        """
        The answer to the command sent with C{tag}, decoded; events that
        come first are queued.

        @raise GatewayRefused: if the gateway answered with an error.
        """
        while True:
            box = self._read_box()
            if b"_command" in box:
                self._queue_event(box)
            elif box.get(b"_answer") == tag:
                return command.parseResponse(box, None)
            elif box.get(b"_error") == tag:
                raise GatewayRefused(
                    command.commandName.decode(),
                    box.get(b"_error_code", b"?").decode(),
                    box.get(b"_error_description", b"").decode("utf-8", "replace"),
                )
            else:
                raise ConnectionError(f"unexpected box from the gateway: {sorted(box)}")

    def event(self, command) -> dict:
        """The next event of type C{command} (others before it are dropped)."""
        while True:
            while self.events:
                kind, arguments = self.events.popleft()
                if kind is command:
                    return arguments
            self._queue_event(self._read_box())

    def _queue_event(self, box: dict) -> None:
        kind = _EVENTS.get(box.get(b"_command"))
        if kind is None:
            raise ConnectionError(f"unexpected command from the gateway: {box.get(b'_command')!r}")
        self.events.append((kind, kind.parseArguments(box, None)))

    def _read_box(self) -> dict:
        box, offset = {}, 0
        while True:
            key, offset = self._read_value(offset)
            if key == b"":
                del self._buffer[:offset]
                return box
            box[key], offset = self._read_value(offset)

    def _read_value(self, offset: int) -> tuple[bytes, int]:
        self._fill(offset + 2)
        (length,) = _LENGTH.unpack_from(self._buffer, offset)
        start = offset + 2
        self._fill(start + length)
        return bytes(self._buffer[start : start + length]), start + length

    def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            self._buffer += chunk

    def leftover(self) -> bytes:
        """Bytes read past the last box (relayed bytes after a switch)."""
        data, self._buffer = bytes(self._buffer), bytearray()
        return data


# -- the three kinds of connection ---------------------------------------------


@contextlib.contextmanager
def _opening(port: int, context):
    """A new channel to the gateway, closed again if setting it up fails."""
    channel = AmpChannel(endpoints.connect(port, context))
    try:
        yield channel
    except BaseException:
        channel.sock.close()
        raise


def hello(channel: AmpChannel, role: str) -> None:
    """Send C{Hello} for C{role}."""
    channel.call(commands.Hello, version=commands.PROTOCOL_VERSION, role=role)


def operator_control(port: int, context, username: str, password: str) -> AmpChannel:
    """A logged-in operator control connection."""
    with _opening(port, context) as channel:
        hello(channel, commands.ROLE_OPERATOR)
        channel.call(commands.Login, username=username, password=password)
    return channel


def create_codes(control: AmpChannel, count: int) -> list[str]:
    """Create C{count} sessions over one control connection, pipelined."""
    tags = control.send(*[(commands.CreateSession, {})] * count)
    return [control.answer(commands.CreateSession, tag)["routing"] for tag in tags]


def join(port: int, context, routing: str) -> AmpChannel:
    """
    An agent connection: C{Hello}, C{Lookup} and C{Join} (pipelined).  The
    connection is a relay leg afterwards; read its notice with L{paired}.
    """
    arguments = {"routing": routing}
    with _opening(port, context) as channel:
        tags = channel.send(
            (commands.Hello, {"version": commands.PROTOCOL_VERSION, "role": commands.ROLE_AGENT}),
            (commands.Lookup, arguments),
            (commands.Join, arguments),
        )
        for command, tag in zip((commands.Hello, commands.Lookup, commands.Join), tags):
            channel.answer(command, tag)
    return channel


def paired(channel: AmpChannel):
    """
    Wait for the agent leg's notice; returns the socket, now carrying only
    relayed bytes.

    @raise ConnectionError: on a C{CLOSED} notice, or relayed bytes before the caller expects any.
    """
    data = channel.leftover()
    while True:
        found, rest = notice.decode(data)
        if found is not None:
            break
        chunk = channel.sock.recv(1024)
        if not chunk:
            raise ConnectionError("the gateway closed the agent leg before pairing")
        data += chunk
    if found.kind != notice.PAIRED:
        raise ConnectionError(f"the gateway closed the agent leg: {found.reason}")
    if rest:
        raise ConnectionError(f"{len(rest)} relayed bytes arrived before the benchmark sent any")
    return channel.sock


def attach(port: int, context, ticket: str):
    """
    An operator data connection: C{Hello} and C{Attach} (pipelined);
    returns the socket, now the operator's relay leg.
    """
    with _opening(port, context) as channel:
        tags = channel.send(
            (commands.Hello, {"version": commands.PROTOCOL_VERSION, "role": commands.ROLE_OPERATOR_DATA}),
            (commands.Attach, {"ticket": ticket}),
        )
        channel.answer(commands.Hello, tags[0])
        channel.answer(commands.Attach, tags[1])
        if channel.leftover():
            raise ConnectionError("relayed bytes arrived before the benchmark sent any")
    return channel.sock
