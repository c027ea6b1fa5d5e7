"""
The transport ladder: the ways a client may reach its gateway, tried in
order of preference and raced with a stagger, so that a way that hangs
costs at most the stagger:

1. C{raw}: TLS to the raw port;
2. C{https-port}: TLS to the HTTPS port (firewalls that only let 443 out);
3. C{connect}: the same through the HTTP proxy's C{CONNECT} tunnel;
4. C{tunnel}: the HTTPS request tunnel, straight to the HTTPS port;
5. C{tunnel-proxy}: the request tunnel as plain HTTP requests through the
   proxy to the gateway's HTTP port (for proxies that refuse CONNECT).

A way counts as working once TLS is verified and the gateway answered
C{Hello}.  The first to work wins; the others are stopped.  The winner is
remembered (L{LadderMemory}) and tried first next time.  Every way ends
with TLS to the gateway verified against its CA: there is no fallback to
plaintext nor to an unverified certificate.
"""

import attrs
from twisted.internet import defer, endpoints, error
from twisted.internet.interfaces import IReactorTCP
from twisted.python.failure import Failure

from wire import client, https, proxy, tls, tunnel
from wire.timers import cancel

RAW = "raw"
HTTPS_PORT = "https-port"
CONNECT = "connect"
TUNNEL = "tunnel"
TUNNEL_PROXY = "tunnel-proxy"
ALL_WAYS = (RAW, HTTPS_PORT, CONNECT, TUNNEL, TUNNEL_PROXY)


@attrs.frozen
class GatewayAddress:
    """Where a client finds its gateway, and the CA it trusts."""

    host: str
    raw_port: int
    https_port: int
    ca_pem: bytes = attrs.field(repr=False)
    http_port: int | None = None


@attrs.frozen
class LadderLimits:
    """The ladder's timings (seconds)."""

    # How long one way may take to connect, verify TLS and get Hello answered.
    deadline: float = 4.0
    # When the next way starts if the current one has not yet worked.
    stagger: float = 0.75


@attrs.frozen
class Attempt:
    """How one way fared."""

    way: str
    ok: bool
    seconds: float
    detail: str


@attrs.frozen
class Report:
    """Which way got through, and how every way fared."""

    winner: str | None
    attempts: tuple[Attempt, ...]

    def lines(self) -> list[str]:
        """One line a way, for a panel or a connectivity test."""
        out = []
        for a in self.attempts:
            mark = "ok  " if a.ok else "fail"
            chosen = "  <- chosen" if a.way == self.winner else ""
            out.append(f"{mark} {a.way:<12} {a.seconds * 1000:7.1f} ms  {a.detail}{chosen}")
        return out


class NoWayThrough(Exception):
    """No way reached the gateway; C{report} says why each failed."""

    def __init__(self, report: Report):
        super().__init__("no way to the gateway worked:\n" + "\n".join(report.lines()))
        self.report = report


class LadderMemory:
    """
    Remembers the way that worked last, in memory or, given a C{path}, in a
    small file so that the next run of the program starts with it.
    """

    def __init__(self, last: str | None = None, path: str | None = None):
        self._path = path
        self._last = last
        if path is not None and last is None:
            try:
                with open(path, encoding="ascii") as f:
                    remembered = f.read().strip()
            except (OSError, UnicodeDecodeError):
                remembered = ""
            self._last = remembered if remembered in ALL_WAYS else None

    @property
    def last(self) -> str | None:
        """The way that worked last, if any."""
        return self._last

    @last.setter
    def last(self, way: str) -> None:
        self._last = way
        if self._path is not None:
            try:
                with open(self._path, "w", encoding="ascii") as f:
                    f.write(way + "\n")
            except OSError:
                pass  # a cache: losing it costs only the first try


def describe(failure) -> str:
    """A plain sentence for why a way failed."""
    value = failure.value
    text = str(value)
    if "certificate verify failed" in text:
        return (
            "the gateway's certificate does not verify: a proxy may be intercepting TLS "
            "(refusing to continue)"
        )
    if isinstance(value, (proxy.ProxyError, tunnel.TunnelFailed)):
        return str(value)
    if isinstance(value, (defer.CancelledError, defer.TimeoutError, error.TimeoutError)):
        return "no answer in time"
    if isinstance(value, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(value, error.DNSLookupError):
        return "the name does not resolve"
    return text.splitlines()[0] if text else type(value).__name__


class Ladder:
    """
    Connects to a gateway by the first way that works.  C{tcp} is the
    reactor used for direct connections (tests put a firewall there).
    """

    def __init__(
        self,
        reactor,
        address: GatewayAddress,
        proxy_settings: proxy.ProxySettings | None = None,
        limits: LadderLimits = LadderLimits(),
        memory: LadderMemory | None = None,
        tcp: IReactorTCP | None = None,
    ):
        self._reactor = reactor
        self.address = address
        self.proxy = proxy_settings
        self.limits = limits
        self.memory = memory or LadderMemory()
        self._tcp = tcp or reactor

    def ways(self) -> list[str]:
        """The ways to try, in order (the remembered winner first)."""
        ways = [RAW, HTTPS_PORT] + ([CONNECT] if self.proxy else []) + [TUNNEL]
        if self.proxy and self.address.http_port:
            ways.append(TUNNEL_PROXY)
        if self.memory.last in ways:
            ways.remove(self.memory.last)
            ways.insert(0, self.memory.last)
        return ways

    def endpoint(self, way: str):
        """The client endpoint of one way: TLS to the gateway, verified."""
        a = self.address
        options = tls.client_options(a.host, a.ca_pem)
        timeout = self.limits.deadline
        if way == RAW:
            inner = endpoints.HostnameEndpoint(self._tcp, a.host, a.raw_port, timeout=timeout)
        elif way == HTTPS_PORT:
            inner = endpoints.HostnameEndpoint(self._tcp, a.host, a.https_port, timeout=timeout)
        elif way == CONNECT:
            to_proxy = endpoints.HostnameEndpoint(
                self._reactor, self.proxy.host, self.proxy.port, timeout=timeout
            )
            inner = proxy.HTTPConnectEndpoint(to_proxy, a.host, a.https_port, self.proxy)
        elif way == TUNNEL:
            route = tunnel.direct_route(self._tcp, a.host, a.https_port, https.Policy(a.ca_pem))
            inner = tunnel.TunnelEndpoint(self._reactor, route)
        elif way == TUNNEL_PROXY:
            route = tunnel.proxy_route(self._reactor, a.host, a.http_port, self.proxy)
            inner = tunnel.TunnelEndpoint(self._reactor, route)
        else:
            raise ValueError(f"unknown way {way!r}")
        return endpoints.wrapClientTLS(options, inner)

    async def _try(self, way: str, role: str, on_event) -> client.GatewayClient:
        connection = await endpoints.connectProtocol(self.endpoint(way), client.GatewayClient(on_event))
        try:
            await connection.hello(role)
        except BaseException:
            connection.transport.abortConnection()
            raise
        return connection

    async def probe(self, role: str) -> Report:
        """
        Try every way at once, each on its own, and report how each fared
        (for a connectivity test); every connection made is closed again.
        """
        clock = self._reactor
        ways = self.ways()

        async def one(way):
            started = clock.seconds()
            d = defer.ensureDeferred(self._try(way, role, None))
            d.addTimeout(self.limits.deadline, clock)
            try:
                connection = await d
            except Exception:
                return Attempt(way, False, clock.seconds() - started, describe(Failure()))
            elapsed = clock.seconds() - started
            connection.transport.loseConnection()
            await connection.lost
            return Attempt(way, True, elapsed, "got through")

        attempts = await defer.gatherResults([defer.ensureDeferred(one(w)) for w in ways])
        working = [a for a in attempts if a.ok]
        return Report(working[0].way if working else None, tuple(attempts))

    async def connect(self, role: str, on_event=None) -> tuple[client.GatewayClient, Report]:
        """
        Reach the gateway and say C{Hello} as C{role}.

        @return: the connection and the report of every way.
        @raise NoWayThrough: when none worked.
        """
        race = _Race(self._reactor, self.ways(), self.limits, lambda way: self._try(way, role, on_event))
        winner, connection, report = await race.run()
        if winner is None:
            raise NoWayThrough(report)
        self.memory.last = winner
        return connection, report


class _Race:
    """
    One staggered race of the ways: each starts C{stagger} seconds after the
    previous one or as soon as it fails; the first to connect wins.
    """

    def __init__(self, clock, ways: list[str], limits: LadderLimits, attempt):
        self._clock = clock
        self._ways = ways
        self._limits = limits
        self._attempt = attempt
        self._started: dict[str, float] = {}
        self._attempts: dict[str, Attempt] = {}
        self._running: dict[str, defer.Deferred] = {}
        self._done = defer.Deferred()
        self._stagger_call = None

    async def run(self):
        """Fires with (winning way or None, its connection or None, report)."""
        self._start_next()
        outcome = await self._done
        self._cancel_stagger()
        for d in list(self._running.values()):
            d.cancel()
        winner, connection = outcome or (None, None)
        return winner, connection, Report(winner, tuple(self._final(w) for w in self._ways))

    def _final(self, way: str) -> Attempt:
        if way in self._attempts:
            return self._attempts[way]
        if way in self._started:
            elapsed = self._clock.seconds() - self._started[way]
            return Attempt(way, False, elapsed, "stopped: another way got through first")
        return Attempt(way, False, 0.0, "not tried: another way got through first")

    def _start_next(self):
        self._cancel_stagger()
        pending = [w for w in self._ways if w not in self._started]
        if not pending or self._done.called:
            return
        way = pending[0]
        self._started[way] = self._clock.seconds()
        d = defer.ensureDeferred(self._attempt(way))
        d.addTimeout(self._limits.deadline, self._clock)
        self._running[way] = d
        d.addCallbacks(lambda c: self._finished(way, connection=c), lambda f: self._finished(way, failure=f))
        if len(pending) > 1:
            self._stagger_call = self._clock.callLater(self._limits.stagger, self._start_next)

    def _finished(self, way, connection=None, failure=None):
        elapsed = self._clock.seconds() - self._started[way]
        self._running.pop(way, None)
        if self._done.called:
            if connection is not None:
                connection.transport.abortConnection()
            return
        if connection is not None:
            self._attempts[way] = Attempt(way, True, elapsed, "got through")
            self._done.callback((way, connection))
            return
        self._attempts[way] = Attempt(way, False, elapsed, describe(failure))
        self._start_next()
        if not self._running and len(self._started) == len(self._ways):
            self._done.callback(None)

    def _cancel_stagger(self):
        cancel(self._stagger_call)
        self._stagger_call = None
