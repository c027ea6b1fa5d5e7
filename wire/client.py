"""
Client side of the gateway protocol, shared by the console and the agent
(and used by the tests and benchmarks): connect over TLS, speak the
commands, and switch a connection into a relay leg.
"""

from twisted.internet import defer, endpoints
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols import amp

from wire import commands, notice, tls


class GatewayClient(amp.AMP):
    """
    An AMP connection to a gateway.  Operator events arrive at
    C{on_event(command, arguments)}; C{lost} fires with the reason (an
    exception) when the connection closes.
    """

    def __init__(self, on_event=None):
        super().__init__()
        self.on_event = on_event or (lambda command, arguments: None)
        self.lost = defer.Deferred()

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if not self.lost.called:
            self.lost.callback(reason.value)

    def _event(self, command, **arguments):
        self.on_event(command, arguments)
        return {}

    @commands.CustomerWaiting.responder
    def customer_waiting(self, **arguments):
        return self._event(commands.CustomerWaiting, **arguments)

    @commands.CustomerLeft.responder
    def customer_left(self, **arguments):
        return self._event(commands.CustomerLeft, **arguments)

    @commands.CodeTimedOut.responder
    def code_timed_out(self, **arguments):
        return self._event(commands.CodeTimedOut, **arguments)

    @commands.SessionEnded.responder
    def session_ended(self, **arguments):
        return self._event(commands.SessionEnded, **arguments)

    @commands.CustomerTaken.responder
    def customer_taken(self, **arguments):
        return self._event(commands.CustomerTaken, **arguments)

    def hello(self, role: str, version: int = commands.PROTOCOL_VERSION):
        """Send C{Hello} for C{role}."""
        return self.callRemote(commands.Hello, version=version, role=role)

    def login(self, username: str, password: str, certificate_request: bytes | None = None):
        """
        Send C{Login}.  With a PEM C{certificate_request} (from
        L{wire.identity.make_request}), the answer's C{certificate} is the
        operator certificate (PEM) the gateway issued for its key.
        """
        return self.callRemote(
            commands.Login,
            username=username,
            password=password,
            certificate_request=certificate_request,
        )

    def switch(self, command, leg: Protocol, **arguments):
        """
        Send C{Join} or C{Attach}; on success the connection now carries
        relayed bytes to and from C{leg}.
        """
        return self.callRemote(command, leg_factory(leg), **arguments)


class _LegFactory(Factory):
    """What AMP's protocol switch needs to build a leg: one given protocol."""

    def __init__(self, leg: Protocol):
        self.leg = leg

    def buildProtocol(self, addr):
        return self.leg

    def clientConnectionFailed(self, connector, reason):
        pass

    def clientConnectionLost(self, connector, reason):
        pass


def leg_factory(leg: Protocol) -> Factory:
    """The factory a C{Join} or C{Attach} switch uses to become C{leg}."""
    return _LegFactory(leg)


class AgentLeg(Protocol):
    """
    The agent's relay leg: reads the gateway's notice, then hands relayed
    bytes to C{relayed}.  C{paired} fires when an operator attached; it
    fails with L{LegClosed} if the gateway closed the leg first.
    """

    def __init__(self):
        self.paired = defer.Deferred()
        self._buffer = b""
        self._notice_seen = False

    def dataReceived(self, data):
        if self._notice_seen:
            self.relayed(data)
            return
        self._buffer += data
        try:
            found, rest = notice.decode(self._buffer)
        except notice.MalformedNotice as e:
            self.transport.loseConnection()
            self.paired.errback(LegClosed(f"the gateway sent no valid notice: {e}"))
            return
        if found is None:
            return
        self._notice_seen = True
        self._buffer = b""
        if found.kind == notice.CLOSED:
            self.paired.errback(LegClosed(found.reason))
            return
        self.operator_attached()
        self.paired.callback(None)
        if rest:
            self.relayed(rest)

    def operator_attached(self) -> None:
        """The gateway paired this leg with an operator; override."""

    def relayed(self, data: bytes) -> None:
        """Bytes the operator's end sent; override."""

    def connectionLost(self, reason):
        if not self.paired.called:
            self.paired.errback(LegClosed("the connection closed before an operator attached"))


class LegClosed(Exception):
    """The gateway closed the relay leg before pairing; the message says why."""


def endpoint(reactor, host: str, port: int, ca_pem: bytes, timeout: float = 10.0):
    """A client endpoint that reaches the gateway at C{host}:C{port} over verified TLS."""
    tcp = endpoints.HostnameEndpoint(reactor, host, port, timeout=timeout)
    return endpoints.wrapClientTLS(tls.client_options(host, ca_pem), tcp)


def connect(reactor, host: str, port: int, ca_pem: bytes, on_event=None, timeout: float = 10.0):
    """Connect to a gateway; fires with a L{GatewayClient}."""
    return endpoints.connectProtocol(
        endpoint(reactor, host, port, ca_pem, timeout), GatewayClient(on_event)
    )
