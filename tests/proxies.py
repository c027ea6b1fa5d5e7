"""
Real HTTP proxies for the tests: Debian's tinyproxy (and squid) on
127.0.0.1, with the configuration each scenario needs; and a firewall for a
client's direct connections.
"""

import io
import os
import pwd
import shutil
import socket
import tempfile

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
    path = _write_config(directory, "tinyproxy.conf", lines)
    process, output = _spawn("/usr/bin/tinyproxy", ["tinyproxy", "-d", "-c", path])

    def stop():
        try:
            process.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass
        return output.ended

    testcase.addCleanup(stop)
    await support.wait_for(lambda: _accepting(port), timeout=10)
    return port


def _write_config(directory: str, name: str, lines) -> str:
    """Write a proxy's configuration file; returns its path."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _spawn(program: str, argv) -> tuple:
    """Start a proxy in the foreground with an empty environment."""
    output = _Output()
    return reactor.spawnProcess(output, program, argv, env={}), output


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def squid(testcase, connect_ports=()) -> int:
    """
    Start Debian's squid in the foreground (stopped when the test ends);
    returns its port.  It serves only C{CONNECT} from 127.0.0.1 to
    127.0.0.1 on C{connect_ports}, caches nothing and needs no DNS.

    Its configuration, pid file, logs and core dumps are in a directory of
    its own under the system's temporary directory (removed when the test
    ends), not under C{testcase.mktemp()}: started as root, squid drops to
    the C{proxy} user, which must be able to write there (and may not reach
    into the caller's private directories).
    """
    directory = tempfile.mkdtemp(prefix="ponte-squid-")
    testcase.addCleanup(shutil.rmtree, directory, ignore_errors=True)
    port = free_port()
    lines = [
        f"http_port 127.0.0.1:{port}",
        "visible_hostname localhost",
        "acl from_here src 127.0.0.1/32",
        "acl to_here dst 127.0.0.1/32",
        "acl CONNECT method CONNECT",
    ]
    if connect_ports:
        lines.append("acl allowed_ports port " + " ".join(str(p) for p in connect_ports))
        lines.append("http_access allow from_here CONNECT to_here allowed_ports")
    lines += [
        "http_access deny all",
        "cache deny all",
        f"pid_filename {directory}/squid.pid",
        f"cache_log {directory}/cache.log",
        f"access_log stdio:{directory}/access.log",
        "cache_store_log none",
        "netdb_filename none",
        "logfile_rotate 0",
        f"coredump_dir {directory}",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        "max_filedescriptors 4096",
        # Only IP addresses are expected; names come from /etc/hosts, never from DNS.
        "hosts_file /etc/hosts",
        "dns_nameservers 127.0.0.1",
    ]
    if os.geteuid() == 0:
        user = _squid_user()
        lines.append(f"cache_effective_user {user.pw_name}")
        os.chown(directory, user.pw_uid, user.pw_gid)
    path = _write_config(directory, "squid.conf", lines)
    process, output = _spawn("/usr/sbin/squid", ["squid", "-N", "-f", path])

    def stop():
        try:
            process.signalProcess("TERM")
        except error.ProcessExitedAlready:
            return output.ended
        # shutdown_lifetime 0: squid exits within about two seconds.
        kill = reactor.callLater(10, _kill, process)
        output.ended.addBoth(lambda result: (kill.cancel() if kill.active() else None, result)[1])
        return output.ended

    testcase.addCleanup(stop)
    # Listening by squid's own word: the port may have been taken meanwhile.
    log = os.path.join(directory, "cache.log")
    await support.wait_for(
        lambda: output.ended.called or (_squid_accepting(log) and _accepting(port)), timeout=10
    )
    if output.ended.called:
        raise RuntimeError(f"squid exited at start: {_squid_log(directory, output.text)}")
    return port


def _squid_accepting(log: str) -> bool:
    """Whether squid's log says it listens for requests."""
    try:
        with open(log, "rb") as f:
            return b"Accepting HTTP Socket connections" in f.read()
    except OSError:
        return False


def _squid_user() -> pwd.struct_passwd:
    """The user squid runs as when started as root (Debian's C{proxy}, else C{nobody})."""
    for name in ("proxy", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("neither a 'proxy' nor a 'nobody' user to run squid as")


def _squid_log(directory: str, text: bytes) -> str:
    """The end of squid's output and cache log, for an error message."""
    try:
        with open(os.path.join(directory, "cache.log"), "rb") as f:
            text += f.read()
    except OSError:
        pass
    return text.decode("utf-8", "replace")[-2000:]


def _kill(process) -> None:
    try:
        process.signalProcess("KILL")
    except error.ProcessExitedAlready:
        pass


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


class ProxyStats:
    """What a test proxy did."""

    def __init__(self):
        self.cuts = 0


async def buffering_proxy(testcase, cut_after: float | None = None, stats: ProxyStats | None = None) -> int:
    """
    Start a small HTTP proxy in this process (stopped when the test ends);
    returns its port (and counts in C{stats} what it did).  It forwards absolute-URI requests (no CONNECT) and,
    like some corporate proxies, hands a response to the client only once it
    is complete.  With C{cut_after}, it instead passes responses through as
    they come but cuts each one off after that many seconds.
    """
    from twisted.web import client as web_client, resource, server
    from twisted.web.http_headers import Headers

    # Like real proxies, keep connections to the server open between requests.
    pool = web_client.HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 8
    agent = web_client.Agent(reactor, pool=pool)

    class Forward(resource.Resource):
        isLeaf = True

        def render(self, request):
            if request.method == b"CONNECT":
                request.setResponseCode(405)
                return b"CONNECT is not allowed here\n"
            body = request.content.read()
            headers = Headers(
                {k: v for k, v in request.requestHeaders.getAllRawHeaders() if k.lower() not in _HOP_BY_HOP}
            )
            producer = web_client.FileBodyProducer(io.BytesIO(body)) if body or request.method == b"POST" else None
            d = agent.request(request.method, request.uri, headers, producer)
            d.addCallback(self._relay, request)
            d.addErrback(self._failed, request)
            return server.NOT_DONE_YET

        def _relay(self, response, request):
            request.setResponseCode(response.code)
            for name, values in response.headers.getAllRawHeaders():
                if name.lower() not in (b"content-length", b"transfer-encoding", b"connection"):
                    request.responseHeaders.setRawHeaders(name, values)
            if cut_after is None:
                return web_client.readBody(response).addCallback(self._finish, request)
            passing = _PassThrough(request, stats)
            response.deliverBody(passing)
            cut = reactor.callLater(cut_after, passing.cut)
            passing.done.addBoth(lambda _: cut.cancel() if cut.active() else None)
            return passing.done

        def _finish(self, body, request):
            if not request._disconnected:
                request.write(body)
                request.finish()

        def _failed(self, failure, request):
            if not request._disconnected and not request.finished:
                request.setResponseCode(502)
                request.write(failure.getErrorMessage().encode("utf-8", "replace"))
                request.finish()

    site = server.Site(Forward())
    site.noisy = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")

    async def stop():
        await port.stopListening()
        await pool.closeCachedConnections()

    testcase.addCleanup(lambda: defer.ensureDeferred(stop()))
    return port.getHost().port


_HOP_BY_HOP = (b"host", b"proxy-authorization", b"connection", b"content-length", b"transfer-encoding")


class _PassThrough(protocol.Protocol):
    """Copies a response body to the client's request until cut off."""

    def __init__(self, request, stats):
        self.request = request
        self.stats = stats
        self.done = defer.Deferred()

    def dataReceived(self, data):
        if not self.request._disconnected and not self.request.finished:
            self.request.write(data)

    def connectionLost(self, reason):
        if not self.request._disconnected and not self.request.finished:
            self.request.finish()
        if not self.done.called:
            self.done.callback(None)

    def cut(self):
        """End the client's response early and drop the gateway's."""
        if self.stats is not None:
            self.stats.cuts += 1
        if not self.request._disconnected and not self.request.finished:
            self.request.finish()
        self.transport.stopProducing()
