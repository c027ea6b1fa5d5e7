"""
The gateway's web side, served on the HTTPS port: C{/health} now; the
tunnel endpoints and the customer portal later.
"""

import json

from twisted.web import resource, server

from wire import logs

_log = logs.logger(__name__)


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


class GatewaySite(server.Site):
    """
    The gateway's site.  Access is logged without query strings or paths
    below the first segment (tunnel identifiers must never reach a log).
    """

    noisy = False

    def log(self, request):
        first = request.path.split(b"/")[1:2]
        _log.info(
            "{method} /{path} {code} from {address}",
            method=request.method.decode("ascii", "replace"),
            path=(first[0] if first else b"").decode("ascii", "replace"),
            code=request.code,
            address=getattr(request.getClientAddress(), "host", "?"),
        )


def make_site(switchboard) -> GatewaySite:
    """The site for a gateway's HTTPS port."""
    root = resource.Resource()
    root.putChild(b"health", Health(switchboard))
    site = GatewaySite(root)
    site.displayTracebacks = False
    return site
