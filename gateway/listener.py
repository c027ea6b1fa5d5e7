"""
The gateway's listeners: an endpoint from the configuration (wrapped in the
TLS options of L{wire.tls} for the TLS ports), listening from
C{privilegedStartService} so that a port below 1024 can be bound before
privileges are dropped.
"""

from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.protocols.policies import WrappingFactory

from gateway.fasttls import BulkTLSFactory

from wire import logs


class ListenError(SystemExit):
    """
    A listener could not start.  It is a C{SystemExit} so that C{twistd}
    exits non-zero with this one line instead of a traceback.
    """


class Listener(Service):
    """Listens on one endpoint description with C{factory}."""

    log = logs.logger(__name__)

    def __init__(self, reactor, description: str, factory, what: str):
        self._reactor = reactor
        self.description = description
        self._factory = factory
        self.what = what
        self.port = None

    def privilegedStartService(self):
        super().privilegedStartService()
        endpoint = endpoints.serverFromString(self._reactor, self.description)
        self._factory.noisy = False
        failures = []
        d = endpoint.listen(self._factory)
        d.addCallbacks(self._listening, failures.append)
        if failures:
            error = failures[0].value
            raise ListenError(f"ponte: cannot listen for {self.what} on {self.description}: {error}")

    def _listening(self, port):
        self.port = port
        address = port.getHost()
        self.log.info(
            "listening for {what} on {host}:{port}",
            what=self.what,
            host=address.host,
            port=address.port,
        )

    def stopService(self):
        """Stop listening and drop the connections still open."""
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            for protocol in list(self._factory.protocols):
                protocol.transport.abortConnection()
            return port.stopListening()


class _Tracking(WrappingFactory):
    """Keeps track of its connections (as the TLS factory does)."""

    noisy = False


def plain_listener(reactor, description: str, factory, what: str) -> Listener:
    """A L{Listener} of plain TCP connections to C{factory}."""
    return Listener(reactor, description, _Tracking(factory), what)


def tls_listener(reactor, description: str, tls_options, factory, what: str) -> Listener:
    """A L{Listener} with the gateway's TLS around C{factory}."""
    factory.noisy = False
    return Listener(reactor, description, BulkTLSFactory(tls_options, False, factory), what)
