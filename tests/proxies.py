"""
Real HTTP proxies for the tests: Debian's tinyproxy on 127.0.0.1, with
the configuration each scenario needs; and a firewall for a client's direct
connections.
"""

import os
import socket

from twisted.internet import defer, error, protocol, reactor
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from tests import support


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Output(protocol.ProcessProtocol):
    def __init__(self):
        self.text = b""
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.text += data

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(None)


async def tinyproxy(testcase, connect_ports=(), credentials=None) -> int:
    """
    Start tinyproxy (stopped when the test ends); returns its port.
    C{connect_ports} limits CONNECT to those ports; C{credentials}
    (user, password) makes it demand Basic authentication.
    """
    directory = testcase.mktemp()
    os.makedirs(directory)
    port = free_port()
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 60",
        "MaxClients 50",
        "Allow 127.0.0.1",
        "LogLevel Connect",
        "DisableViaHeader Yes",
    ]
    lines += [f"ConnectPort {p}" for p in connect_ports]
    if credentials:
        lines.append(f"BasicAuth {credentials[0]} {credentials[1]}")
    path = os.path.join(directory, "tinyproxy.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    output = _Output()
    process = reactor.spawnProcess(output, "/usr/bin/tinyproxy", ["tinyproxy", "-d", "-c", path], env={})

    def stop():
        try:
            process.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass
        return output.ended

    testcase.addCleanup(stop)
    await support.wait_for(lambda: _accepting(port), timeout=10)
    return port


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class _RefusedConnector:
    def __init__(self, factory):
        self.factory = factory
        self.call = reactor.callLater(0, self._refuse)

    def _refuse(self):
        self.factory.clientConnectionFailed(self, Failure(error.ConnectionRefusedError("firewall")))

    def stopConnecting(self):
        if self.call.active():
            self.call.cancel()

    def disconnect(self):
        self.stopConnecting()

    def getDestination(self):
        return None


class Firewall:
    """
    The reactor, except that direct TCP connections to C{blocked} ports are
    refused, as an office firewall would.  Proxies, being other processes,
    are not affected.
    """

    def __init__(self, blocked=()):
        self._blocked = set(blocked)
        directlyProvides(self, providedBy(reactor))

    def __getattr__(self, name):
        return getattr(reactor, name)

    def connectTCP(self, host, port, factory, timeout=30, bindAddress=None):
        if port in self._blocked:
            return _RefusedConnector(factory)
        return reactor.connectTCP(host, port, factory, timeout, bindAddress)


class _Silent(protocol.Protocol):
    """Accepts a connection and never says anything."""


async def black_hole(testcase) -> int:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    port = reactor.listenTCP(0, protocol.Factory.forProtocol(_Silent), interface="127.0.0.1")
    testcase.addCleanup(port.stopListening)
    return port.getHost().port
