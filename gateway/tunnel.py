"""
The server side of the HTTPS request tunnel: a byte stream carried by
ordinary HTTP requests, for networks where only web requests get out.

A tunnel is a virtual connection.  What flows in it is exactly what flows
over the raw TLS port (TLS records to the gateway, then the ponte
protocol), so the stream stays encrypted and verified even when the
requests themselves cross a proxy as plain HTTP.  The tunnel is the
transport of a TLS protocol like any socket, and a tunnelled leg splices
with a leg of any other kind.

Requests (all answers C{Cache-Control: no-store}):

- C{POST /t/open}: a new tunnel; answers its id (128 random bits).
- C{GET /t/ID/down?from=N&mode=stream|poll}: the stream from offset C{N}
  (which also acknowledges everything before it) in frames
  (L{wire.tunnel_frames}).  C{stream}: the response stays open and frames
  are written as bytes come, with keepalive frames, for at most the hold
  time.  C{poll}: the response ends as soon as it carries some bytes, or
  empty after the hold time.  A new download replaces the previous one.
- C{POST /t/ID/up?offset=N&ack=M}: stream bytes from offset C{N} (a
  retried POST delivers only what the gateway has not had, never a byte
  twice); C{ack} acknowledges the download up to C{M}, so that a long
  streaming response does not hold the gateway's buffer (the body may be
  empty for an acknowledgement alone).
- C{POST /t/ID/close}.
"""

import hashlib
import json
import secrets

import attrs
from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.python.failure import Failure
from twisted.web import resource, server

from wire import logs
from wire.tunnel_frames import DATA, KEEPALIVE, frame
from wire.virtual import VirtualTransport
from wire.timers import cancel

log = logs.logger(__name__)


@attrs.frozen
class TunnelLimits:
    """The tunnel's configurable numbers."""

    max_post: int = 262144
    per_address: int = 8
    idle_expiry: float = 60.0
    hold: float = 20.0
    keepalive: float = 5.0
    high_water: int = 262144


class TunnelError(Exception):
    """A tunnel request that cannot be served; C{code} is the HTTP status."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class ServerTunnel(VirtualTransport):
    """One tunnel: the transport of one protocol, fed by HTTP requests."""

    def __init__(self, registry: "TunnelRegistry", tunnel_id: str, peer: IPv4Address, host: IPv4Address):
        self._registry = registry
        self.id = tunnel_id
        self._peer = peer
        self._host = host
        self.protocol = None
        self.disconnecting = False
        self.closed = False
        # Downstream: bytes [acked, sent) are kept until the client confirms them.
        self._pending = bytearray()
        self._acked = 0
        self._sent = 0
        self._download = None
        self._download_from = 0
        self._download_mode = "stream"
        self._download_timers = []
        # Upstream.
        self._received = 0
        self._held = []
        self._expiry = None

    @property
    def limits(self) -> TunnelLimits:
        return self._registry.limits

    # -- ITransport --------------------------------------------------------

    def write(self, data):
        if self.closed or not data:
            return
        self._pending += data
        self._sent += len(data)
        self._flush_download()
        self._queued(len(self._pending), self.limits.high_water)

    def loseConnection(self):
        self.disconnecting = True
        self._flush_download()

    def abortConnection(self):
        self._lost(Failure(error.ConnectionAborted()))

    def getPeer(self):
        return self._peer

    def getHost(self):
        return self._host

    def resumeProducing(self):
        self._paused = False
        held, self._held = self._held, []
        for request, data in held:
            if self.closed:
                break
            self._deliver(request, data)

    # -- requests ----------------------------------------------------------

    def download(self, request, start: int, mode: str):
        """Serve C{GET /t/ID/down}."""
        if not self._acked <= start <= self._sent:
            raise TunnelError(409, f"cannot resume at offset {start}: the tunnel has [{self._acked}, {self._sent}]")
        self.acknowledge(start)
        self._end_download()
        if self.disconnecting and start == self._sent:
            # The client has everything, up to the gateway's close.
            self._lost(Failure(error.ConnectionDone()))
        if self.closed:
            raise TunnelError(410, "the tunnel is closed")
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"x-accel-buffering", b"no")
        self._download, self._download_mode = request, mode
        self._download_from = start
        request.notifyFinish().addBoth(self._download_gone, request)
        clock = self._registry.clock
        self._download_timers = [clock.callLater(self.limits.hold, self._end_download)]
        if mode == "stream":
            # Sent at once: a client that does not see it soon is behind a buffering proxy.
            request.write(frame(KEEPALIVE, self._sent))
            self._download_timers.append(clock.callLater(self.limits.keepalive, self._keepalive))
        self._flush_download()
        return server.NOT_DONE_YET

    def acknowledge(self, offset: int):
        """The client has the download up to C{offset}: forget what is before."""
        if offset > self._sent:
            raise TunnelError(409, f"cannot acknowledge offset {offset}: only {self._sent} bytes were sent")
        self._touch()
        if offset <= self._acked:
            return  # a retried request's older acknowledgement
        del self._pending[: offset - self._acked]
        self._acked = offset
        self._download_from = max(self._download_from, offset) if self._download else offset
        self._drained(len(self._pending), self.limits.high_water)

    def upload(self, request, offset: int, body: bytes, ack: int | None = None):
        """Serve C{POST /t/ID/up}."""
        if ack is not None:
            self.acknowledge(ack)
        if offset > self._received:
            raise TunnelError(409, f"gap: the tunnel expects offset {self._received}, not {offset}")
        self._touch()
        fresh = body[self._received - offset :]
        if self._paused and fresh:
            self._held.append((request, fresh))
            return server.NOT_DONE_YET
        self._deliver(request, fresh)
        return server.NOT_DONE_YET

    def _deliver(self, request, data: bytes):
        self._received += len(data)
        if data and self.protocol is not None:
            self.protocol.dataReceived(data)
        if _answerable(request):
            request.setHeader(b"content-type", b"application/json")
            request.write(json.dumps({"received": self._received}).encode())
            request.finish()

    # -- internals ---------------------------------------------------------

    def _flush_download(self):
        request = self._download
        if request is None:
            return
        unsent_from = self._download_from
        if self._sent > unsent_from:
            data = bytes(self._pending[unsent_from - self._acked :])
            request.write(frame(DATA, unsent_from, data))
            self._download_from = self._sent
            if self._download_mode == "poll":
                self._end_download()
                return
        if self.disconnecting and self._download_from == self._sent:
            self._end_download()

    def _keepalive(self):
        if self._download is not None:
            self._download.write(frame(KEEPALIVE, self._download_from))
            self._download_timers.append(
                self._registry.clock.callLater(self.limits.keepalive, self._keepalive)
            )

    def _end_download(self):
        request, self._download = self._download, None
        self._stop_download_timers()
        if request is not None and _answerable(request):
            request.finish()

    def _stop_download_timers(self):
        cancel(*self._download_timers)
        self._download_timers = []

    def _download_gone(self, _, request):
        if self._download is request:
            self._download = None
            self._stop_download_timers()

    def _touch(self):
        if self._expiry is not None and self._expiry.active():
            self._expiry.reset(self.limits.idle_expiry)
        else:
            self._expiry = self._registry.clock.callLater(self.limits.idle_expiry, self._expired)

    def _expired(self):
        log.info("tunnel from {address} expired", address=self._peer.host)
        self._lost(Failure(error.ConnectionLost("the tunnel expired")))

    def close_from_client(self):
        """Serve C{POST /t/ID/close}."""
        self._lost(Failure(error.ConnectionDone("the client closed the tunnel")))

    def _lost(self, reason):
        if self.closed:
            return
        self.closed = True
        cancel(self._expiry)
        self._end_download()
        for request, _ in self._held:
            if _answerable(request):
                request.setResponseCode(410)
                request.finish()
        self._held = []
        self._registry._forget(self)
        if self._producer is not None:
            self._producer.stopProducing()
        if self.protocol is not None:
            protocol, self.protocol = self.protocol, None
            protocol.connectionLost(reason)


def _digest(tunnel_id: str) -> bytes:
    return hashlib.sha256(tunnel_id.encode("ascii", "replace")).digest()


class TunnelRegistry:
    """The open tunnels of a gateway; makes each one's protocol from C{factory}."""

    def __init__(self, factory, clock, limits: TunnelLimits, host: IPv4Address):
        self.factory = factory
        self.clock = clock
        self.limits = limits
        self._host = host
        self._tunnels: dict[bytes, ServerTunnel] = {}
        self._per_address: dict[str, int] = {}

    def open(self, address: str) -> ServerTunnel:
        """A new tunnel for a client at C{address}."""
        if self._per_address.get(address, 0) >= self.limits.per_address:
            raise TunnelError(429, f"too many open tunnels from this address (limit {self.limits.per_address})")
        tunnel_id = secrets.token_hex(16)
        peer = IPv4Address("TCP", address, 0)
        tunnel = ServerTunnel(self, tunnel_id, peer, self._host)
        self._tunnels[_digest(tunnel_id)] = tunnel
        self._per_address[address] = self._per_address.get(address, 0) + 1
        tunnel._touch()
        tunnel.protocol = self.factory.buildProtocol(peer)
        tunnel.protocol.makeConnection(tunnel)
        return tunnel

    def get(self, tunnel_id: str) -> ServerTunnel:
        """The tunnel with this id; L{TunnelError} 404 if none (or expired)."""
        tunnel = self._tunnels.get(_digest(tunnel_id))
        if tunnel is None or not secrets.compare_digest(tunnel.id, tunnel_id):
            raise TunnelError(404, "unknown or expired tunnel")
        return tunnel

    def _forget(self, tunnel: ServerTunnel):
        if self._tunnels.pop(_digest(tunnel.id), None) is not None:
            address = tunnel.getPeer().host
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]

    def close_all(self):
        """Close every tunnel (when the gateway stops)."""
        for tunnel in list(self._tunnels.values()):
            tunnel.abortConnection()

    def __len__(self):
        return len(self._tunnels)


class TunnelResource(resource.Resource):
    """C{/t/...}: the HTTP face of the L{TunnelRegistry}."""

    isLeaf = True

    def __init__(self, registry: TunnelRegistry):
        super().__init__()
        self.registry = registry

    def render(self, request):
        request.setHeader(b"cache-control", b"no-store")
        try:
            return self._route(request)
        except TunnelError as e:
            request.setResponseCode(e.code)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (str(e) + "\n").encode("utf-8")

    def _route(self, request):
        parts = [p.decode("ascii", "replace") for p in request.postpath if p]
        method = request.method
        if parts == ["open"] and method == b"POST":
            tunnel = self.registry.open(request.getClientAddress().host)
            request.setResponseCode(201)
            request.setHeader(b"content-type", b"application/json")
            limits = self.registry.limits
            return json.dumps(
                {"id": tunnel.id, "max_post": limits.max_post, "hold": limits.hold}
            ).encode()
        if len(parts) != 2:
            raise TunnelError(404, "no such tunnel request")
        tunnel = self.registry.get(parts[0])
        action = parts[1]
        if action == "down" and method == b"GET":
            mode = _argument(request, b"mode", "stream")
            if mode not in ("stream", "poll"):
                raise TunnelError(400, "mode must be stream or poll")
            return tunnel.download(request, _offset(request, b"from"), mode)
        if action == "up" and method == b"POST":
            body = request.content.read(self.registry.limits.max_post + 1)
            if len(body) > self.registry.limits.max_post:
                raise TunnelError(413, f"an upload may carry at most {self.registry.limits.max_post} bytes")
            ack = _offset(request, b"ack") if b"ack" in request.args else None
            return tunnel.upload(request, _offset(request, b"offset"), body, ack)
        if action == "close" and method == b"POST":
            tunnel.close_from_client()
            return b""
        raise TunnelError(405, "no such tunnel request")


def _answerable(request) -> bool:
    """Whether C{request} can still be answered (not finished, client still there)."""
    return not request.finished and not request._disconnected


def _argument(request, name: bytes, default: str) -> str:
    values = request.args.get(name)
    return values[0].decode("ascii", "replace") if values else default


def _offset(request, name: bytes) -> int:
    text = _argument(request, name, "")
    if not text.isdigit() or len(text) > 18:
        raise TunnelError(400, f"{name.decode()} must be a byte offset")
    return int(text)
