"""
The client's transport ladder against a real gateway and real proxies
(Debian's tinyproxy) on 127.0.0.1.
"""

import attrs
from twisted.internet import defer, reactor
from twisted.trial import unittest

from gateway import pki
from tests import proxies, support
from wire import commands, ladder, proxy

MiB = 1 << 20


class ProxySettingsTests(unittest.TestCase):
    def test_from_url(self):
        settings = proxy.ProxySettings.from_url("http://us%40er:p%3Ass@proxy.example:8080")
        self.assertEqual((settings.host, settings.port, settings.username, settings.password),
                         ("proxy.example", 8080, "us@er", "p:ss"))
        self.assertEqual(proxy.ProxySettings.from_url("proxy.example").port, 3128)
        self.assertRaises(ValueError, proxy.ProxySettings.from_url, "socks5://proxy.example")

    def test_authorization(self):
        self.assertEqual(proxy.ProxySettings("p", 1, "user", "secret").authorization(), b"Basic dXNlcjpzZWNyZXQ=")
        self.assertIsNone(proxy.ProxySettings("p", 1).authorization())

    def test_password_not_in_repr(self):
        self.assertNotIn("secret", repr(proxy.ProxySettings("p", 1, "user", "secret")))

    def test_environment(self):
        env = {"https_proxy": "http://proxy.example:3128", "no_proxy": "localhost, .corp.example"}
        self.assertEqual(proxy.from_environment("gateway.example", env).host, "proxy.example")
        self.assertIsNone(proxy.from_environment("localhost", env))
        self.assertIsNone(proxy.from_environment("ponte.corp.example", env))
        self.assertIsNone(proxy.from_environment("corp.example", env))
        self.assertIsNone(proxy.from_environment("x.example", {"HTTPS_PROXY": "p:1", "NO_PROXY": "*"}))
        self.assertIsNone(proxy.from_environment("x.example", {}))


class LadderTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.gateway = support.RunningGateway(self)
        self.address = ladder.GatewayAddress(
            "localhost", self.gateway.port, self.gateway.https_port, self.gateway.ca, self.gateway.http_port
        )

    async def reach(self, **kw):
        connection, report = await ladder.Ladder(reactor, self.address, **kw).connect(commands.ROLE_AGENT)
        self.addCleanup(support.close, connection)
        return connection, report

    def firewall(self):
        """Direct connections to both gateway ports are blocked."""
        return proxies.Firewall({self.gateway.port, self.gateway.https_port})

    @defer.inlineCallbacks
    def test_raw_first(self):
        memory = ladder.LadderMemory()
        connection, report = yield defer.ensureDeferred(self.reach(memory=memory))
        self.assertEqual(report.winner, "raw")
        self.assertEqual(memory.last, "raw")
        self.assertTrue(report.attempts[0].ok)
        self.assertIn("<- chosen", report.lines()[0])

    @defer.inlineCallbacks
    def test_black_holed_raw_port_costs_only_the_stagger(self):
        """When the raw port swallows connections, the HTTPS port gets through well within 5 s."""
        hole = yield defer.ensureDeferred(proxies.black_hole(self))
        self.address = attrs.evolve(self.address, raw_port=hole)
        started = reactor.seconds()
        connection, report = yield defer.ensureDeferred(self.reach())
        self.assertEqual(report.winner, "https-port")
        self.assertLess(reactor.seconds() - started, 2.5)
        self.assertEqual(report.attempts[0].detail, "stopped: another way got through first")

    def test_memory_in_a_file(self):
        path = self.mktemp()
        self.assertIsNone(ladder.LadderMemory(path=path).last)
        ladder.LadderMemory(path=path).last = "tunnel"
        self.assertEqual(ladder.LadderMemory(path=path).last, "tunnel")
        with open(path, "w") as f:
            f.write("carrier-pigeon\n")
        self.assertIsNone(ladder.LadderMemory(path=path).last)

    @defer.inlineCallbacks
    def test_remembered_way_goes_first(self):
        memory = ladder.LadderMemory("https-port")
        connection, report = yield defer.ensureDeferred(self.reach(memory=memory))
        self.assertEqual([a.way for a in report.attempts], ["https-port", "raw", "tunnel"])
        self.assertEqual(report.winner, "https-port")

    @defer.inlineCallbacks
    def test_intercepted_tls_is_refused_plainly(self):
        other_ca, _ = pki.make_ca("Corporate Inspection CA", "Somewhere")
        address = ladder.GatewayAddress("localhost", self.gateway.port, self.gateway.https_port,
                                        pki.certificate_pem(other_ca))
        with self.assertRaises(ladder.NoWayThrough) as raised:
            yield defer.ensureDeferred(ladder.Ladder(reactor, address).connect(commands.ROLE_AGENT))
        for attempt in raised.exception.report.attempts:
            self.assertFalse(attempt.ok)
            self.assertIn("certificate does not verify: a proxy may be intercepting TLS", attempt.detail)

    @defer.inlineCallbacks
    def test_nothing_gets_through(self):
        with self.assertRaises(ladder.NoWayThrough) as raised:
            yield defer.ensureDeferred(self.reach(tcp=self.firewall()))
        self.assertEqual([a.detail for a in raised.exception.report.attempts],
                         ["connection refused"] * 3)
        self.assertIn("no way to the gateway worked", str(raised.exception))

    @defer.inlineCallbacks
    def test_connect_only_to_the_https_port(self):
        """
        Scenario 1: the firewall lets only the proxy out, and the proxy
        allows CONNECT only to the HTTPS port: the ladder gets through by
        CONNECT, and a full session moves 20 MiB each way intact.
        """
        port = yield defer.ensureDeferred(proxies.tinyproxy(self, connect_ports=[self.gateway.https_port]))
        settings = proxy.ProxySettings("127.0.0.1", port)
        refused = proxy.HTTPConnectEndpoint(
            _tcp(port), "localhost", self.gateway.port, settings
        )
        with self.assertRaises(proxy.ProxyError) as raised:
            yield refused.connect(_Nothing())
        self.assertIn(f"the proxy refused CONNECT to localhost:{self.gateway.port} (403", str(raised.exception))
        yield defer.ensureDeferred(self.full_session(proxy_settings=settings, tcp=self.firewall()))

    @defer.inlineCallbacks
    def test_proxy_with_basic_authentication(self):
        """Scenario 4: the proxy requires a username and password."""
        port = yield defer.ensureDeferred(
            proxies.tinyproxy(self, connect_ports=[self.gateway.https_port], credentials=("ponte", "s3cret"))
        )
        with self.assertRaises(ladder.NoWayThrough) as raised:
            yield defer.ensureDeferred(
                self.reach(proxy_settings=proxy.ProxySettings("127.0.0.1", port), tcp=self.firewall())
            )
        self.assertEqual(_attempt(raised.exception.report, "connect").detail,
                         "the proxy wants a username and password (407)")
        with self.assertRaises(ladder.NoWayThrough) as raised:
            yield defer.ensureDeferred(
                self.reach(proxy_settings=proxy.ProxySettings("127.0.0.1", port, "ponte", "wrong"),
                           tcp=self.firewall())
            )
        self.assertRegex(_attempt(raised.exception.report, "connect").detail,
                         r"^the proxy refused the username and password \(40[17]\)$")
        yield defer.ensureDeferred(
            self.full_session(proxy_settings=proxy.ProxySettings("127.0.0.1", port, "ponte", "s3cret"),
                              tcp=self.firewall())
        )

    @defer.inlineCallbacks
    def test_proxy_refusing_connect(self):
        """
        Scenario 2: the proxy refuses CONNECT altogether: the request tunnel
        gets through as plain HTTP requests (carrying verified TLS).
        """
        port = yield defer.ensureDeferred(proxies.tinyproxy(self, connect_ports=[1]))
        yield defer.ensureDeferred(
            self.full_session(proxy_settings=proxy.ProxySettings("127.0.0.1", port), tcp=self.firewall(),
                              way="tunnel-proxy")
        )

    @defer.inlineCallbacks
    def test_tunnel_straight_to_the_https_port(self):
        """With only the tunnel allowed, it carries a whole session by itself."""
        memory = ladder.LadderMemory("tunnel")
        yield defer.ensureDeferred(self.full_session(memory=memory, way="tunnel"))

    async def full_session(self, way="connect", slow=False, **ladder_options):
        """Operator on raw TLS, agent by the ladder; 20 MiB each way and a small round trip."""
        agent, report = await self.reach(**ladder_options)
        self.assertEqual(report.winner, way, report.lines())
        size = 20 * MiB
        to_agent, to_operator = support.Receiver(size + 5), support.Receiver(size + 5)
        agent_leg = support.TestAgentLeg(to_agent.received)
        operator_leg = support.StreamLeg(to_operator.received)
        await support.pair(self.gateway, self, agent_leg, operator_leg, agent=agent)
        up = support.Sender(agent_leg.transport, size, b"up")
        down = support.Sender(operator_leg.transport, size, b"down")
        up.start()
        down.start()
        sent_up, sent_down = await defer.gatherResults([up.done, down.done])
        if slow:
            # Let the transfer span several cut-off responses.
            await support.wait_for(lambda: to_agent.count >= size, timeout=30)
        # A small message each way completes the count and shows the round trip.
        agent_leg.transport.write(b"ping!")
        await support.wait_for(lambda: to_operator.count == size + 5)
        operator_leg.transport.write(b"pong!")
        await support.wait_for(lambda: to_agent.count == size + 5)
        self.assertEqual(to_operator.sha.hexdigest(), _sha(sent_up, b"ping!", size, b"up"))
        self.assertEqual(to_agent.sha.hexdigest(), _sha(sent_down, b"pong!", size, b"down"))
        return agent


def _attempt(report, way):
    return [a for a in report.attempts if a.way == way][0]


def _sha(_, tail, size, seed):
    import hashlib

    sender_chunk = support.block(seed, 256 * 1024)
    digest = hashlib.sha256()
    remaining = size
    while remaining:
        piece = sender_chunk[: min(len(sender_chunk), remaining)]
        digest.update(piece)
        remaining -= len(piece)
    digest.update(tail)
    return digest.hexdigest()


def _tcp(port):
    from twisted.internet import endpoints

    return endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)


class _Nothing:
    def buildProtocol(self, addr):
        from twisted.internet.protocol import Protocol

        return Protocol()


class AwkwardProxyTests(LadderTests):
    """Proxies that buffer or cut responses: the tunnel still carries everything."""

    def setUp(self):
        self.gateway = support.RunningGateway(self, tunnel_hold=3.0, tunnel_keepalive=1.0)
        self.address = ladder.GatewayAddress(
            "localhost", self.gateway.port, self.gateway.https_port, self.gateway.ca, self.gateway.http_port
        )

    @defer.inlineCallbacks
    def test_buffering_proxy(self):
        """
        Scenario 3: the proxy hands out responses only once complete: the
        tunnel notices, falls back to long-polling, and a whole session works.
        """
        port = yield defer.ensureDeferred(proxies.buffering_proxy(self))
        agent = yield defer.ensureDeferred(
            self.full_session(proxy_settings=proxy.ProxySettings("127.0.0.1", port), tcp=self.firewall(),
                              way="tunnel-proxy")
        )
        self.assertEqual(agent.transport.transport.mode, "poll")

    @defer.inlineCallbacks
    def test_proxy_cutting_streams(self):
        """A proxy that cuts every streaming response short loses and repeats nothing."""
        stats = proxies.ProxyStats()
        port = yield defer.ensureDeferred(proxies.buffering_proxy(self, cut_after=0.05, stats=stats))
        agent = yield defer.ensureDeferred(
            self.full_session(proxy_settings=proxy.ProxySettings("127.0.0.1", port), tcp=self.firewall(),
                              way="tunnel-proxy", slow=True)
        )
        self.assertEqual(agent.transport.transport.mode, "stream")
        self.assertGreaterEqual(stats.cuts, 3)
