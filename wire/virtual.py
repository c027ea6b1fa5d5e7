"""
What the two ends of the request tunnel have in common: a transport that is
not a socket, fed and drained by HTTP requests, with flow control both ways.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport
from zope.interface import implementer


@implementer(ITransport, IConsumer, IPushProducer)
class VirtualTransport:
    """
    The parts of a tunnel's transport that do not depend on which end it
    is: the writer's producer is paused above a high-water mark of queued
    bytes and resumed below half of it; the reader (our C{protocol}) can
    pause us.  Subclasses write, close and deliver.
    """

    protocol = None
    _producer = None
    _producer_paused = False
    _paused = False

    def writeSequence(self, data):
        self.write(b"".join(data))

    def getHost(self):
        return IPv4Address("TCP", "0.0.0.0", 0)

    def setTcpNoDelay(self, enabled):
        """Every request is sent at once; nothing to do."""

    def setTcpKeepAlive(self, enabled):
        """Tunnels keep themselves alive and expire on their own; nothing to do."""

    # -- IConsumer: the protocol writing to us -----------------------------

    def registerProducer(self, producer, streaming):
        self._producer = producer
        self._producer_paused = False

    def unregisterProducer(self):
        self._producer = None

    def _queued(self, size: int, high_water: int) -> None:
        """C{size} bytes wait to be sent: pause the writer above C{high_water}."""
        if self._producer is not None and not self._producer_paused and size > high_water:
            self._producer_paused = True
            self._producer.pauseProducing()

    def _drained(self, size: int, high_water: int) -> None:
        """Only C{size} bytes wait now: resume the writer below half C{high_water}."""
        if self._producer is not None and self._producer_paused and size <= high_water // 2:
            self._producer_paused = False
            self._producer.resumeProducing()

    # -- IPushProducer: us feeding the protocol ----------------------------

    def pauseProducing(self):
        self._paused = True

    def stopProducing(self):
        self.abortConnection()
