"""
The client side of the HTTPS request tunnel (see L{gateway.tunnel}): an
endpoint whose connections are carried by ordinary HTTP requests, directly
over HTTPS or as plain HTTP requests through a proxy that refuses CONNECT.

What the connection carries is TLS to the gateway (the ladder wraps this
endpoint in the same verified TLS as any other way), so neither the proxy
nor anything on the path can read or change it.

Downloads start in streaming mode.  If the gateway's first keepalive frame
does not arrive within C{detect} seconds, something on the path buffers
responses, and the tunnel switches to long-polling: one response per batch
of bytes.  Offsets make every retry safe.
"""

import json

import attrs
from twisted.internet import defer, error
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web import client as web
from twisted.web.iweb import IBodyProducer
from twisted.web.http_headers import Headers
from zope.interface import implementer

from wire import logs, tunnel_frames
from wire.virtual import VirtualTransport
from wire.timers import cancel

log = logs.logger(__name__)


@attrs.frozen
class TunnelClientLimits:
    """The client's timings and sizes."""

    # Seconds to see the first byte of a streaming download before deciding
    # that the path buffers responses.
    detect: float = 2.0
    # Seconds one upload or the opening request may take.
    request_timeout: float = 15.0
    # Bytes queued for upload above which the writer is paused.
    high_water: int = 1 << 20
    # Failed requests in a row after which the tunnel gives up.
    retries: int = 3
    # Downloaded bytes after which the client acknowledges them (so the
    # gateway can forget them) without waiting for the response to end.
    ack_every: int = 65536


class TunnelFailed(Exception):
    """The tunnel could not be opened or broke; the message says how."""


@attrs.frozen
class TunnelRoute:
    """
    How to send the tunnel's requests: C{base} is the gateway's URL
    (C{https://host:port} or, through a proxy, C{http://host:port}) and
    C{agent} the C{twisted.web} agent that reaches it.
    """

    base: bytes
    agent: object
    pool: web.HTTPConnectionPool
    headers: dict = attrs.field(factory=dict)

    def close(self):
        """Close the route's idle HTTP connections; fires when they are closed."""
        return self.pool.closeCachedConnections()

    def request_headers(self) -> Headers:
        """The headers of every tunnel request on this route."""
        headers = Headers({b"cache-control": [b"no-store"]})
        for name, value in self.headers.items():
            headers.setRawHeaders(name, [value])
        return headers


def direct_route(reactor, host: str, https_port: int, policy) -> TunnelRoute:
    """Tunnel requests straight to the gateway's HTTPS port."""
    pool = web.HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 4
    agent = web.Agent(reactor, contextFactory=policy, pool=pool, connectTimeout=10)
    return TunnelRoute(f"https://{host}:{https_port}".encode("idna"), agent, pool)


def proxy_route(reactor, host: str, http_port: int, proxy_settings) -> TunnelRoute:
    """Tunnel requests as plain HTTP through a proxy to the gateway's HTTP port."""
    from twisted.internet.endpoints import HostnameEndpoint

    pool = web.HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 4
    agent = web.ProxyAgent(
        HostnameEndpoint(reactor, proxy_settings.host, proxy_settings.port, timeout=10),
        reactor,
        pool=pool,
    )
    headers = {}
    authorization = proxy_settings.authorization()
    if authorization:
        headers[b"proxy-authorization"] = authorization
    return TunnelRoute(f"http://{host}:{http_port}".encode("idna"), agent, pool, headers)


@implementer(IStreamClientEndpoint)
class TunnelEndpoint:
    """Connections carried by the request tunnel along C{route}."""

    def __init__(self, reactor, route: TunnelRoute, limits: TunnelClientLimits = TunnelClientLimits()):
        self._reactor = reactor
        self.route = route
        self.limits = limits

    def connect(self, factory):
        return defer.ensureDeferred(self._connect(factory))

    async def _connect(self, factory):
        try:
            response, body = await _request(
                self._reactor, self.route, b"POST", b"/t/open", b"", self.limits.request_timeout
            )
        except BaseException:
            await self.route.close()
            raise
        if response.code != 201:
            await self.route.close()
            raise TunnelFailed(f"the gateway refused to open a tunnel ({response.code}: {body.decode('utf-8', 'replace').strip()})")
        opened = json.loads(body)
        tunnel = ClientTunnel(self._reactor, self.route, opened["id"], int(opened["max_post"]), self.limits)
        protocol = factory.buildProtocol(tunnel.getPeer())
        tunnel.protocol = protocol
        protocol.makeConnection(tunnel)
        tunnel.start()
        return protocol


@implementer(IBodyProducer)
class _Body:
    """A request body written in one go (no extra reactor turn, no copy)."""

    def __init__(self, data: bytes):
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self._data)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


async def _request(reactor, route: TunnelRoute, method: bytes, path: bytes, body: bytes, timeout: float):
    producer = _Body(body) if method == b"POST" else None
    d = route.agent.request(method, route.base + path, route.request_headers(), producer)
    d.addTimeout(timeout, reactor)
    response = await d
    content = web.readBody(response)
    content.addTimeout(timeout, reactor)
    return response, await content


class _DownloadBody(Protocol):
    """Feeds a download response's body to the tunnel as it arrives."""

    def __init__(self, tunnel: "ClientTunnel", request_number: int):
        self.tunnel = tunnel
        self.number = request_number
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.tunnel._downloaded(self.number, data)

    def connectionLost(self, reason):
        self.done.callback(None)


class ClientTunnel(VirtualTransport):
    """The transport of a tunnelled connection, on the client's side."""

    def __init__(self, reactor, route: TunnelRoute, tunnel_id: str, max_post: int, limits: TunnelClientLimits):
        self._reactor = reactor
        self.route = route
        self.id = tunnel_id
        self.max_post = max_post
        self.limits = limits
        self.protocol = None
        self.mode = "stream"
        self.disconnecting = False
        self.closed = False
        self._reader = tunnel_frames.FrameReader()
        self._download_number = 0
        self._download_d = None
        self._first_byte_seen = False
        self._detect_call = None
        self._outgoing = bytearray()
        self._uploaded = 0  # offset of the first byte of _outgoing
        self._uploading = False
        self._upload_d = None
        self._download_body = None
        self._acknowledged = 0  # download offset last acknowledged
        self._stash = []
        self._failures = {"down": 0, "up": 0}
        self._retries = {}

    # -- ITransport --------------------------------------------------------

    def write(self, data):
        if self.closed or self.disconnecting or not data:
            return
        self._outgoing += data
        self._upload()
        self._queued(len(self._outgoing), self.limits.high_water)

    def loseConnection(self):
        if self.disconnecting or self.closed:
            return
        self.disconnecting = True
        if not self._outgoing and not self._uploading:
            self._close(Failure(error.ConnectionDone()))

    def abortConnection(self):
        self._close(Failure(error.ConnectionAborted()))

    def getPeer(self):
        return IPv4Address("TCP", self.route.base.split(b"//")[1].rsplit(b":", 1)[0].decode(), 0)

    def resumeProducing(self):
        self._paused = False
        stash, self._stash = self._stash, []
        for data in stash:
            self._deliver(data)
        if self._download_d is None and not self.closed:
            self._download()

    # -- downloads ---------------------------------------------------------

    def start(self):
        """Begin downloading."""
        self._download()

    def _download(self):
        if self.closed or self._paused:
            return
        self._download_number += 1
        number = self._download_number
        path = b"/t/%s/down?from=%d&mode=%s" % (self.id.encode(), self._reader.position, self.mode.encode())
        d = self.route.agent.request(b"GET", self.route.base + path, self.route.request_headers())
        self._download_d = d
        self._first_byte_seen = False
        if self.mode == "stream":
            self._detect_call = self._reactor.callLater(self.limits.detect, self._buffering_suspected, number)
        d.addCallback(self._download_response, number)
        d.addBoth(self._download_ended, number)

    def _download_response(self, response, number):
        if response.code == 410:
            self._close(Failure(error.ConnectionDone("the gateway closed the tunnel")))
            return web.readBody(response).addErrback(lambda f: None)
        if response.code != 200:
            raise TunnelFailed(f"download answered {response.code}")
        body = _DownloadBody(self, number)
        self._download_body = body
        response.deliverBody(body)
        return body.done

    def _downloaded(self, number, data):
        if number != self._download_number or self.closed:
            return
        self._first_byte_seen = True
        self._failures["down"] = 0
        try:
            fresh = self._reader.feed(data)
        except tunnel_frames.FrameError as e:
            self._close(Failure(TunnelFailed(f"the download is corrupt: {e}")))
            return
        if fresh:
            self._deliver(fresh)
            if self._reader.position - self._acknowledged >= self.limits.ack_every:
                self._upload()

    def _deliver(self, data):
        if self._paused:
            self._stash.append(data)
        elif self.protocol is not None:
            self.protocol.dataReceived(data)

    def _download_ended(self, result, number):
        if number != self._download_number or self.closed:
            return None
        cancel(self._detect_call)
        self._detect_call = None
        self._download_d = None
        self._reader.reset()
        if isinstance(result, Failure) and not result.check(defer.CancelledError):
            self._retry("down", self._download, result)
            return None
        if self.mode == "poll":
            # An answer to what just arrived is written on the next reactor
            # turn (TLS gathers small writes); let its upload go out first.
            self._retries["next"] = self._reactor.callLater(0, self._download)
        else:
            self._download()
        return None

    def _retry(self, direction: str, action, failure):
        """Try C{action} again a little later, or give up after too many failures."""
        self._failures[direction] += 1
        if self._failures[direction] > self.limits.retries:
            word = "downloads" if direction == "down" else "uploads"
            self._close(Failure(TunnelFailed(f"{word} keep failing: {failure.getErrorMessage()}")))
            return
        pending = self._retries.get(direction)
        if pending is None or not pending.active():
            self._retries[direction] = self._reactor.callLater(0.1 * self._failures[direction], action)

    def _buffering_suspected(self, number):
        self._detect_call = None
        if number != self._download_number or self._first_byte_seen or self.closed:
            return
        log.info("the path to the gateway buffers responses: switching the tunnel to long-polling")
        self.mode = "poll"
        d, self._download_d = self._download_d, None
        self._download_number += 1  # whatever the old request still brings is ignored
        self._download()
        if d is not None:
            d.cancel()

    # -- uploads -----------------------------------------------------------

    def _upload(self):
        """Send what is queued, and acknowledge what was downloaded."""
        position = self._reader.position
        if self._uploading or self.closed or not (self._outgoing or position > self._acknowledged):
            return
        self._uploading = True
        chunk = bytes(self._outgoing[: self.max_post])
        path = b"/t/%s/up?offset=%d&ack=%d" % (self.id.encode(), self._uploaded, position)
        self._acknowledged = position
        d = defer.ensureDeferred(
            _request(self._reactor, self.route, b"POST", path, chunk, self.limits.request_timeout)
        )
        self._upload_d = d
        d.addBoth(self._uploaded_answer)

    def _uploaded_answer(self, result):
        self._uploading = False
        self._upload_d = None
        if self.closed:
            return
        if isinstance(result, Failure):
            self._retry("up", self._upload, result)
            return
        response, body = result
        if response.code == 410:
            self._close(Failure(error.ConnectionDone("the gateway closed the tunnel")))
            return
        if response.code != 200:
            self._close(Failure(TunnelFailed(f"upload answered {response.code}: {body[:200]!r}")))
            return
        self._failures["up"] = 0
        received = int(json.loads(body)["received"])
        del self._outgoing[: received - self._uploaded]
        self._uploaded = received
        self._drained(len(self._outgoing), self.limits.high_water)
        if self._outgoing or self._reader.position - self._acknowledged >= self.limits.ack_every:
            self._upload()
        elif self.disconnecting:
            self._close(Failure(error.ConnectionDone()))

    # -- closing -----------------------------------------------------------

    def _close(self, reason):
        if self.closed:
            return
        self.closed = True
        cancel(self._detect_call, *self._retries.values())
        body, self._download_body = self._download_body, None
        if body is not None and body.transport is not None:
            body.transport.stopProducing()  # drops a response still streaming
        for d in (self._download_d, self._upload_d):
            if d is not None:
                d.cancel()
        self._download_d = self._upload_d = None
        if self._producer is not None:
            self._producer.stopProducing()
        path = b"/t/%s/close" % self.id.encode()
        closing = defer.ensureDeferred(_request(self._reactor, self.route, b"POST", path, b"", 5))
        closing.addErrback(lambda f: None)
        # The connection is over once its HTTP connections are closed too.
        closing.addCallback(lambda _: self.route.close())
        closing.addCallback(lambda _: self._lost(reason))

    def _lost(self, reason):
        if self.protocol is not None:
            protocol, self.protocol = self.protocol, None
            protocol.connectionLost(reason)
