"""
HTTP proxies for Ponte's clients: settings from configuration or from
C{https_proxy}/C{no_proxy}, and an endpoint that reaches a target through a
proxy's C{CONNECT} tunnel (with Basic authentication when the proxy asks).

What goes through the tunnel is still TLS to the gateway, verified against
the gateway's CA: a proxy that intercepts TLS makes the connection fail.
"""

import base64
import os
import urllib.parse

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

# The most a proxy's answer to CONNECT (status line and headers) may have.
MAX_RESPONSE_HEAD = 16384


class ProxyError(Exception):
    """The proxy did not open the tunnel; the message says what it answered."""


@attrs.frozen
class ProxySettings:
    """Where the proxy is, and the credentials for it, if any."""

    host: str
    port: int
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> "ProxySettings":
        """
        Read C{http://[user:password@]host[:port]} (port 3128 by default;
        a bare C{host:port} is accepted too).

        @raise ValueError: for anything else.
        """
        if "://" not in url:
            url = "http://" + url
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"not an http:// proxy address: {url!r}")
        return cls(
            host=parsed.hostname,
            port=parsed.port or 3128,
            username=urllib.parse.unquote(parsed.username) if parsed.username else None,
            password=urllib.parse.unquote(parsed.password) if parsed.password else None,
        )

    def authorization(self) -> bytes | None:
        """The C{Proxy-Authorization} header value, if credentials are set."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode("utf-8")
        return b"Basic " + base64.b64encode(pair)


def from_environment(target_host: str, environ=os.environ) -> ProxySettings | None:
    """
    The proxy C{https_proxy} names for C{target_host}, unless C{no_proxy}
    exempts that host (a comma-separated list of names, domain suffixes,
    or C{*}).
    """
    url = environ.get("https_proxy") or environ.get("HTTPS_PROXY")
    if not url:
        return None
    exempt = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    host = target_host.lower().rstrip(".")
    for entry in (e.strip().lower().lstrip(".") for e in exempt.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return ProxySettings.from_url(url)


class _ConnectProtocol(Protocol):
    """
    Asks the proxy for a tunnel; once it answers 200, the wrapped protocol
    has the connection and every byte goes to it.
    """

    def __init__(self, wrapped: Protocol, target: bytes, authorization, ready: defer.Deferred):
        self.wrapped = wrapped
        self.target = target
        self.authorization = authorization
        self.ready = ready
        self.head = b""
        self.open = False

    def connectionMade(self):
        lines = [b"CONNECT " + self.target + b" HTTP/1.1", b"Host: " + self.target]
        if self.authorization:
            lines.append(b"Proxy-Authorization: " + self.authorization)
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n")

    def dataReceived(self, data):
        if self.open:
            self.wrapped.dataReceived(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > MAX_RESPONSE_HEAD:
                self._fail("the proxy's answer to CONNECT is too long")
            return
        head, rest = self.head[:end], self.head[end + 4 :]
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            self._fail(f"the proxy answered CONNECT with {status_line[:80]!r}")
            return
        status = int(parts[1])
        if status != 200:
            self._fail(self._refusal(status, parts[2] if len(parts) > 2 else ""))
            return
        self.open = True
        self.head = b""
        self.wrapped.makeConnection(self.transport)
        self.ready.callback(self.wrapped)
        if rest:
            self.wrapped.dataReceived(rest)

    def _refusal(self, status: int, reason: str) -> str:
        # Some proxies (tinyproxy) answer bad credentials with 401, not 407.
        if status in (401, 407):
            if self.authorization is None:
                return f"the proxy wants a username and password ({status})"
            return f"the proxy refused the username and password ({status})"
        return f"the proxy refused CONNECT to {self.target.decode()} ({status} {reason})"

    def _fail(self, message: str):
        self.transport.abortConnection()
        if not self.ready.called:
            self.ready.errback(ProxyError(message))

    def connectionLost(self, reason):
        if self.open:
            self.wrapped.connectionLost(reason)
        elif not self.ready.called:
            self.ready.errback(ProxyError("the proxy closed the connection before opening the tunnel"))


@implementer(IStreamClientEndpoint)
class HTTPConnectEndpoint:
    """
    Reaches C{host}:C{port} through the proxy reached by C{proxy_endpoint}.
    Fires with the wrapped protocol once the tunnel is open.
    """

    def __init__(self, proxy_endpoint, host: str, port: int, settings: ProxySettings):
        self._proxy_endpoint = proxy_endpoint
        self._target = f"{host}:{port}".encode("idna")
        self._authorization = settings.authorization()

    def connect(self, factory):
        ready = defer.Deferred()
        wrapped = factory.buildProtocol(None)
        tunnel = _ConnectProtocol(wrapped, self._target, self._authorization, ready)
        connecting = self._proxy_endpoint.connect(Factory.forProtocol(lambda: tunnel))

        def cancel(_):
            connecting.cancel()
            if tunnel.transport is not None:
                tunnel.transport.abortConnection()

        result = defer.Deferred(cancel)
        connecting.addErrback(lambda f: ready.called or ready.errback(f))
        ready.chainDeferred(result)
        return result
