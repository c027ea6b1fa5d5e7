"""
One port for everything: the first byte of a connection (inside TLS) says
whether it speaks the ponte protocol or HTTP.

Every AMP box starts with a zero byte (its first key is shorter than 256
bytes); every HTTP request starts with a method name in capital letters.
The byte that decided is replayed to the chosen protocol, so nothing is
lost however the client split its first TLS records.
"""

from twisted.internet.protocol import Factory, Protocol

from wire import logs
from wire.timers import cancel


class SniffingProtocol(Protocol):
    """
    Waits for the first byte, then hands the connection to the ponte
    protocol or to the web site for good.
    """

    log = logs.logger(__name__)

    def __init__(self, factory: "SniffingFactory"):
        self.factory = factory
        self.chosen: Protocol | None = None
        self._deadline = None

    def connectionMade(self):
        self._deadline = self.factory.clock.callLater(
            self.factory.deadline, self._too_slow
        )

    def _too_slow(self):
        self._deadline = None
        self.transport.abortConnection()

    def dataReceived(self, data):
        if self.chosen is not None:
            self.chosen.dataReceived(data)
            return
        if not data:
            return
        self._cancel()
        wanted = self.factory.ponte if data[:1] == b"\x00" else self.factory.web
        chosen = wanted.buildProtocol(self.transport.getPeer())
        if chosen is None:
            self.transport.abortConnection()
            return
        self.chosen = chosen
        # From now on the TLS layer delivers straight to the chosen protocol.
        if getattr(self.transport, "wrappedProtocol", None) is self:
            self.transport.wrappedProtocol = chosen
        chosen.makeConnection(self.transport)
        chosen.dataReceived(data)

    def connectionLost(self, reason):
        self._cancel()
        if self.chosen is not None:
            self.chosen.connectionLost(reason)

    def _cancel(self):
        cancel(self._deadline)
        self._deadline = None


class SniffingFactory(Factory):
    """
    Builds L{SniffingProtocol}s choosing between C{ponte} and C{web}
    factories; a connection that sends nothing for C{deadline} seconds is
    dropped.
    """

    noisy = False

    def __init__(self, ponte: Factory, web: Factory, clock, deadline: float):
        self.ponte = ponte
        self.web = web
        self.clock = clock
        self.deadline = deadline

    def buildProtocol(self, addr):
        return SniffingProtocol(self)
