"""
The end-to-end channel between console and agent, inside the stream the
gateway relays: TLS 1.3 over the relay leg (the console is the server with
its operator certificate, the agent the client), then the session protocol
(AMP) on top, gated until the code is confirmed (L{wire.confirm}).

This module builds the layers and keeps the protocol thin: everything the
session does lives in a core object (C{agent.session}, C{console.session})
that is the AMP command locator and implements L{ISessionCore}.
"""

from cryptography import x509
from OpenSSL import SSL
from twisted.internet import defer
from twisted.internet import error as network_errors
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols import amp
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from wire import confirm, identity, logs, tls
from wire.boxbound import BoxBound
from wire.client import AgentLeg
from wire.session_commands import SessionLimits

class ISessionCore(amp.IResponderLocator):
    """What a session core offers its channel, besides locating responders."""

    def channel_ready(channel: "SessionChannel") -> None:
        """The inner TLS handshake completed; C{channel} can be used."""

    def channel_lost(problem: str | None) -> None:
        """
        The channel closed; C{problem} says what went wrong in words for a
        person (C{None} for an orderly close).
        """

    def accepts(command: bytes) -> bool:
        """
        Whether C{command} may run now: only the confirmation before the code
        is confirmed, only the rating once the session ended.
        """


def _refuse(box):
    """Answer any command with C{NOT_VERIFIED} (the code its callers map to L{NotVerified})."""
    return defer.fail(amp.RemoteAmpError(b"NOT_VERIFIED", "not now: the session code is not confirmed, or the session has ended"))


@implementer(amp.IResponderLocator)
class _Gate:
    """Locates responders in the core, refusing what the session's state does not allow."""

    log = logs.logger(__name__)

    def __init__(self, core: ISessionCore):
        self.core = core

    def locateResponder(self, name: bytes):
        if not self.core.accepts(name):
            self.log.warn("refused {command} in this state", command=name.decode("ascii", "replace"))
            return _refuse
        responder = self.core.locateResponder(name)
        if responder is None:
            self.log.warn("unknown session command {command}", command=name.decode("ascii", "replace"))
        return responder


@implementer(IHandshakeListener)
class SessionChannel(amp.AMP):
    """
    The session protocol's connection inside the end-to-end TLS: bounds
    the size of each message and hands everything to its core.
    """

    log = logs.logger(__name__)

    def __init__(self, core: ISessionCore, limits: SessionLimits):
        super().__init__(locator=_Gate(core))
        self.core = core
        self.limits = limits
        self._bound = BoxBound(limits.max_box_bytes)
        self._problem: str | None = None
        self.handshake_done = False

    def makeConnection(self, transport):
        # Skip AMP's log line with both addresses: there are none worth logging.
        amp.BinaryBoxProtocol.makeConnection(self, transport)

    def handshakeCompleted(self):
        self.handshake_done = True
        self.core.channel_ready(self)

    def dataReceived(self, data):
        if self._bound.over(len(data)):
            self.abort(f"the other side sent a message larger than {self.limits.max_box_bytes} bytes")
            return
        super().dataReceived(data)

    def ampBoxReceived(self, box):
        self._bound.box_received()
        super().ampBoxReceived(box)

    def abort(self, problem: str) -> None:
        """Stop the channel at once because of C{problem}."""
        if self._problem is None:
            self._problem = problem
        if self.transport is not None:
            self.transport.abortConnection()

    def close(self) -> None:
        """Close the channel in order once what is queued is sent."""
        if self.transport is not None:
            self.transport.loseConnection()

    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's verified certificate, if it sent one."""
        found = self.transport.getPeerCertificate()
        return found.to_cryptography() if found is not None else None

    def exporter(self) -> bytes:
        """The inner TLS exporter value the confirmation binds to."""
        return self.transport.getHandle().export_keying_material(
            confirm.EXPORTER_LABEL, confirm.EXPORTER_LENGTH
        )

    def connectionLost(self, reason):
        amp.BinaryBoxProtocol.connectionLost(self, reason)
        self.core.channel_lost(self._problem or describe_loss(reason.value, self.handshake_done))


def describe_loss(reason: Exception, handshake_done: bool = True) -> str | None:
    """In words for a person, why a channel closed (C{None}: an orderly close)."""
    if isinstance(reason, SSL.Error) and not handshake_done:
        return "the secure connection between operator and customer could not be set up"
    if isinstance(reason, SSL.Error):
        return (
            "integrity error: the encrypted stream was altered or corrupted on the way "
            "(the session was stopped; nothing altered was used)"
        )
    if isinstance(reason, network_errors.ConnectionDone):
        return None
    return f"the connection was lost ({reason.__class__.__name__})"


class _Single(Factory):
    def __init__(self, protocol: Protocol):
        self.protocol_instance = protocol

    def buildProtocol(self, addr):
        return self.protocol_instance


def console_layers(channel: SessionChannel, certificate_pem: bytes, key_pem: bytes) -> Protocol:
    """
    The operator's relay leg: TLS server with the operator certificate,
    carrying C{channel}.  Give it to C{Attach}.
    """
    factory = TLSMemoryBIOFactory(
        tls.inner_server_options(certificate_pem, key_pem), False, _Single(channel)
    )
    return factory.buildProtocol(None)


class AgentLayers(AgentLeg):
    """
    The agent's relay leg: after the gateway's notice, a TLS client that
    trusts only the operator CA, carrying the session channel.
    """

    def __init__(self, channel: SessionChannel, operator_ca_pem: bytes):
        super().__init__()
        self.options = tls.InnerClientOptions(operator_ca_pem)
        self.attached = False
        self.inner = TLSMemoryBIOFactory(self.options, True, _Single(channel)).buildProtocol(None)

    def operator_attached(self):
        self.attached = True
        self.inner.makeConnection(self.transport)

    def relayed(self, data):
        self.inner.dataReceived(data)

    def connectionLost(self, reason):
        if self.attached:
            self.inner.connectionLost(reason)
        super().connectionLost(reason)


def operator_of(channel: SessionChannel) -> identity.OperatorIdentity:
    """The operator named by the certificate the console presented."""
    return identity.read_identity(channel.peer_certificate())
