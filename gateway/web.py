"""
The gateway's web side, served on the HTTPS port (and on the plain HTTP
port for tunnels through proxies that refuse CONNECT): C{/health} and the
request tunnel C{/t/}; the customer portal later.
"""

import io
import json

import attrs
from twisted.web import http, resource, server

from gateway.tunnel import TunnelResource
from wire import logs
from wire.timers import cancel

_log = logs.logger(__name__)


@attrs.frozen
class WebLimits:
    """Limits of every HTTP request."""

    # Seconds from a request's first byte to its last (headers and body).
    request_deadline: float = 10.0
    # Bytes of a request body.
    max_body: int = 262144


class Health(resource.Resource):
    """C{GET /health}: 200 with a small JSON body while the gateway runs."""

    isLeaf = True

    def __init__(self, switchboard):
        super().__init__()
        self._switchboard = switchboard

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        body = {"status": "ok", "live_codes": self._switchboard.router.live_count}
        return json.dumps(body).encode("utf-8")


class BoundedRequest(server.Request):
    """A request whose body may not exceed the site's C{max_body}."""

    _refused = False

    def gotLength(self, length):
        if length is not None and length > self.channel.site.limits.max_body:
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._refused:
            return
        if self.content.tell() + len(data) > self.channel.site.limits.max_body:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self):
        self._refused = True
        self.content = io.BytesIO()
        transport = self.channel.transport
        transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        transport.loseConnection()


class DeadlineChannel(http.HTTPChannel):
    """
    An HTTP/1.1 channel that gives each request C{request_deadline} seconds
    from its first byte to its last, so a client dribbling a request
    (slowloris) cannot hold a connection.
    """

    _deadline = None

    def dataReceived(self, data):
        if self._deadline is None and data:
            self._deadline = self.callLater(self.site.limits.request_deadline, self._too_slow)
        super().dataReceived(data)

    def allContentReceived(self):
        self._cancel_deadline()
        super().allContentReceived()

    def connectionLost(self, reason):
        self._cancel_deadline()
        super().connectionLost(reason)

    def _too_slow(self):
        self._deadline = None
        _log.info("dropping a request that took too long to arrive")
        self.transport.abortConnection()

    def _cancel_deadline(self):
        cancel(self._deadline)
        self._deadline = None


class GatewaySite(server.Site):
    """
    The gateway's site.  Access is logged without query strings or paths
    below the first segment (tunnel identifiers must never reach a log).
    """

    noisy = False
    protocol = DeadlineChannel
    requestFactory = BoundedRequest

    def __init__(self, root, limits: WebLimits, reactor=None):
        super().__init__(root, reactor=reactor)
        self.limits = limits

    def log(self, request):
        first = request.path.split(b"/")[1:2]
        _log.info(
            "{method} /{path} {code} from {address}",
            method=request.method.decode("ascii", "replace"),
            path=(first[0] if first else b"").decode("ascii", "replace"),
            code=request.code,
            address=getattr(request.getClientAddress(), "host", "?"),
        )


def make_site(switchboard, tunnels, limits: WebLimits, reactor=None) -> GatewaySite:
    """The site for a gateway's HTTPS and HTTP ports."""
    root = resource.Resource()
    root.putChild(b"health", Health(switchboard))
    root.putChild(b"t", TunnelResource(tunnels))
    site = GatewaySite(root, limits, reactor=reactor)
    site.displayTracebacks = False
    return site
