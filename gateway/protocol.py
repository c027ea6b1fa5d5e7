"""
The gateway's side of the gateway protocol: a thin AMP protocol that bounds
what a peer may send, enforces the connection deadlines and hands every
command to the L{Switchboard}.
"""

import attrs
from twisted.internet import defer
from twisted.internet.protocol import Factory

from twisted.protocols import amp

from gateway.switchboard import Peer, Switchboard
from wire import commands, logs
from wire.boxbound import BoxBound
from wire.timers import cancel


@attrs.frozen
class ConnectionLimits:
    """Per-connection limits of the gateway protocol."""

    handshake_timeout: float = 15.0
    idle_timeout: float = 900.0
    preauth_max_bytes: int = 16384
    max_box_bytes: int = 262144

    @classmethod
    def from_config(cls, config) -> "ConnectionLimits":
        """The limits a gateway configuration sets."""
        return cls(
            handshake_timeout=config.handshake_timeout,
            idle_timeout=config.control_idle_timeout,
            preauth_max_bytes=config.preauth_max_bytes,
            max_box_bytes=config.max_box_bytes,
        )


class GatewayProtocol(amp.AMP):
    """One client connection, until it becomes a relay leg (if ever)."""

    log = logs.logger(__name__)

    def __init__(self, switchboard: Switchboard, clock, limits: ConnectionLimits, transport_name="tls"):
        super().__init__()
        self.switchboard = switchboard
        self._clock = clock
        self.limits = limits
        self._transport_name = transport_name
        self.peer: Peer | None = None
        self._received = 0
        self._bound = BoxBound(limits.max_box_bytes)
        self._trusted = False
        self._switched = False
        self._deadline = None
        self._close_reason = "connection closed"

    # -- connection --------------------------------------------------------

    def makeConnection(self, transport):
        # Skip AMP's own log line with both addresses for every connection:
        # the gateway records connection events itself.
        amp.BinaryBoxProtocol.makeConnection(self, transport)

    def connectionMade(self):
        super().connectionMade()
        # Small answers and events must not wait for the peer's delayed ACK
        # (Nagle), and relayed keystrokes neither.
        self.transport.setTcpNoDelay(True)
        address = self.transport.getPeer()
        self.peer = Peer(
            address=getattr(address, "host", str(address)),
            transport=self._transport_name,
            events=self._send_event,
        )
        self.switchboard.connected(self.peer)
        self._set_deadline(self.limits.handshake_timeout, "said nothing before the handshake deadline")

    def dataReceived(self, data):
        if self.innerProtocol is not None:
            self.innerProtocol.dataReceived(data)
            return
        self._received += len(data)
        too_large = self._bound.over(len(data))
        if not self._trusted and self._received > self.limits.preauth_max_bytes:
            self._refuse(f"sent more than {self.limits.preauth_max_bytes} bytes before logging in or joining")
            return
        if too_large:
            self._refuse(f"sent a message larger than {self.limits.max_box_bytes} bytes")
            return
        super().dataReceived(data)

    def ampBoxReceived(self, box):
        self._bound.box_received()
        super().ampBoxReceived(box)
        # After Hello (even in this very box), silence is limited by the idle
        # timeout; a connection that became a relay leg has no such limit here.
        if self.peer.role is not None and self.innerProtocol is None and not self._switched:
            self._set_deadline(self.limits.idle_timeout, "idle")

    def connectionLost(self, reason):
        self._cancel_deadline()
        switched = self.innerProtocol is not None
        amp.BinaryBoxProtocol.connectionLost(self, reason)
        self.transport = None
        if not switched and self.peer is not None:
            if self._keyLengthLimitExceeded:
                self._close_reason = "malformed message"
            self.switchboard.disconnected(self.peer, self._close_reason)

    def _refuse(self, reason: str) -> None:
        self.log.info("closing connection from {address}: {reason}", address=self.peer.address, reason=reason)
        self._close_reason = reason
        self.switchboard.record("refused", self.peer, reason)
        self.transport.abortConnection()

    def _set_deadline(self, seconds: float, reason: str) -> None:
        self._cancel_deadline()
        self._deadline = self._clock.callLater(seconds, self._refuse, reason)

    def _cancel_deadline(self) -> None:
        cancel(self._deadline)
        self._deadline = None

    def _send_event(self, command, **arguments) -> None:
        if self.transport is not None and self.innerProtocol is None:
            self.callRemote(command, **arguments)

    def _switching(self) -> None:
        self._trusted = self._switched = True
        self._cancel_deadline()

    # -- commands ----------------------------------------------------------

    @commands.Hello.responder
    def hello(self, version, role):
        return self.switchboard.hello(self.peer, version, role)

    @commands.Login.responder
    def login(self, username, password, certificate_request=None, totp=None, new_password=None):
        d = defer.ensureDeferred(
            self.switchboard.login(self.peer, username, password, certificate_request, totp, new_password)
        )

        def logged_in(result):
            self._trusted = True
            return result

        return d.addCallback(logged_in)

    @commands.CreateSession.responder
    def create(self, team=False):
        return self.switchboard.create(self.peer, team)

    @commands.CancelSession.responder
    def cancel(self, routing):
        return self.switchboard.cancel(self.peer, routing)

    @commands.ListSessions.responder
    def list_sessions(self):
        return self.switchboard.sessions(self.peer)

    @commands.PickUp.responder
    def pick_up(self, routing):
        return self.switchboard.pick_up(self.peer, routing)

    @commands.ReportConfirmationFailure.responder
    def confirmation_failed(self, routing):
        return self.switchboard.confirmation_failed(self.peer, routing)

    @commands.UploadTranscript.responder
    def upload_transcript(self, routing, part, parts, size, data):
        return defer.ensureDeferred(self.switchboard.upload_transcript(self.peer, routing, part, parts, size, data))

    @commands.ReportProblem.responder
    def report_problem(self, part, parts, size, data):
        return defer.ensureDeferred(self.switchboard.report_problem(self.peer, part, parts, size, data))

    @commands.Lookup.responder
    def lookup(self, routing):
        return self.switchboard.lookup(self.peer, routing)

    @commands.Join.responder
    def join(self, routing):
        leg = self.switchboard.join(self.peer, routing)
        self._switching()
        return leg

    @commands.Attach.responder
    def attach(self, ticket):
        leg = self.switchboard.attach(self.peer, ticket)
        self._switching()
        return leg


class GatewayFactory(Factory):
    """Builds a L{GatewayProtocol} per accepted connection."""

    def __init__(self, switchboard: Switchboard, clock, limits: ConnectionLimits, transport_name="tls"):
        self.switchboard = switchboard
        self.clock = clock
        self.limits = limits
        self.transport_name = transport_name

    def buildProtocol(self, addr):
        return GatewayProtocol(self.switchboard, self.clock, self.limits, self.transport_name)
