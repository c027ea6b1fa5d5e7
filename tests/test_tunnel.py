"""
The request tunnel's server side over real HTTP on 127.0.0.1: offsets,
replays, limits, expiry and a slow client.
"""

import io
import json
import socket
import time

from twisted.internet import defer, protocol, reactor, threads
from twisted.internet.address import IPv4Address
from twisted.trial import unittest
from twisted.web import client as web_client
from twisted.web.http_headers import Headers

from gateway.tunnel import TunnelLimits, TunnelRegistry
from gateway.web import WebLimits, make_site
from tests import support
from wire import tunnel_frames


class Recorder(protocol.Protocol):
    """Stands for the TLS layer behind a tunnel: records what arrives."""

    def __init__(self):
        self.received = b""
        self.lost = None

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.lost = reason


class TunnelServerTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        self.protocols = []

        def build():
            p = Recorder()
            self.protocols.append(p)
            return p

        self.registry = TunnelRegistry(
            protocol.Factory.forProtocol(build),
            reactor,
            TunnelLimits(max_post=1024, per_address=2, idle_expiry=1.0, hold=1.0, keepalive=0.3),
            IPv4Address("TCP", "127.0.0.1", 0),
        )
        site = make_site(_NoSwitchboard(), self.registry, WebLimits(request_deadline=1.0, max_body=2048), reactor)
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.registry.close_all)
        pool = web_client.HTTPConnectionPool(reactor, persistent=False)
        self.agent = web_client.Agent(reactor, pool=pool)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}".encode()

    async def call(self, method, path, body=None):
        producer = web_client.FileBodyProducer(io.BytesIO(body)) if body is not None else None
        response = await self.agent.request(method, self.base + path, Headers(), producer)
        return response.code, await web_client.readBody(response)

    async def open(self):
        code, body = await self.call(b"POST", b"/t/open", b"")
        self.assertEqual(code, 201)
        return json.loads(body)["id"].encode()

    @defer.inlineCallbacks
    def test_upload_offsets(self):
        """In-order bytes arrive once; a replay adds nothing; a gap is refused."""
        tid = yield defer.ensureDeferred(self.open())
        up = lambda offset, data: defer.ensureDeferred(self.call(b"POST", b"/t/%s/up?offset=%d" % (tid, offset), data))
        self.assertEqual((yield up(0, b"hello ")), (200, b'{"received": 6}'))
        self.assertEqual((yield up(0, b"hello ")), (200, b'{"received": 6}'))  # replayed
        self.assertEqual((yield up(3, b"lo world")), (200, b'{"received": 11}'))  # overlapping retry
        code, body = yield up(20, b"!")
        self.assertEqual(code, 409)
        self.assertIn(b"gap: the tunnel expects offset 11, not 20", body)
        self.assertEqual(self.protocols[0].received, b"hello world")

    @defer.inlineCallbacks
    def test_download_resumes_without_loss_or_repeat(self):
        tid = yield defer.ensureDeferred(self.open())
        tunnel = self.registry.get(tid.decode())
        tunnel.write(b"abcdef")
        code, body = yield defer.ensureDeferred(self.call(b"GET", b"/t/%s/down?from=0&mode=poll" % tid))
        reader = tunnel_frames.FrameReader()
        self.assertEqual((code, reader.feed(body)), (200, b"abcdef"))
        # The client asks again from 3, as if it had lost the end: it gets exactly that.
        tunnel.write(b"gh")
        code, body = yield defer.ensureDeferred(self.call(b"GET", b"/t/%s/down?from=3&mode=poll" % tid))
        self.assertEqual(tunnel_frames.FrameReader(3).feed(body), b"defgh")
        # Bytes before an acknowledged offset are gone.
        code, body = yield defer.ensureDeferred(self.call(b"GET", b"/t/%s/down?from=1&mode=poll" % tid))
        self.assertEqual(code, 409)

    @defer.inlineCallbacks
    def test_stream_has_keepalives_and_ends_at_the_hold_time(self):
        tid = yield defer.ensureDeferred(self.open())
        started = reactor.seconds()
        code, body = yield defer.ensureDeferred(self.call(b"GET", b"/t/%s/down?from=0&mode=stream" % tid))
        self.assertGreaterEqual(reactor.seconds() - started, 0.9)
        self.assertEqual(code, 200)
        self.assertGreaterEqual(body.count(bytes([tunnel_frames.KEEPALIVE])), 3)
        self.assertEqual(tunnel_frames.FrameReader().feed(body), b"")

    @defer.inlineCallbacks
    def test_unknown_and_expired_tunnels(self):
        code, body = yield defer.ensureDeferred(self.call(b"GET", b"/t/%s/down?from=0" % (b"0" * 32)))
        self.assertEqual((code, body), (404, b"unknown or expired tunnel\n"))
        tid = yield defer.ensureDeferred(self.open())
        yield support.wait_for(lambda: self.protocols[0].lost is not None, timeout=5)
        code, body = yield defer.ensureDeferred(self.call(b"POST", b"/t/%s/up?offset=0" % tid, b"x"))
        self.assertEqual((code, body), (404, b"unknown or expired tunnel\n"))

    @defer.inlineCallbacks
    def test_oversized_upload(self):
        tid = yield defer.ensureDeferred(self.open())
        code, _ = yield defer.ensureDeferred(self.call(b"POST", b"/t/%s/up?offset=0" % tid, b"x" * 1500))
        self.assertEqual(code, 413)  # over the tunnel's max_post
        # Over the site's body limit: refused before the body is read.
        code, _ = yield defer.ensureDeferred(self.call(b"POST", b"/t/%s/up?offset=0" % tid, b"x" * 100_000))
        self.assertEqual(code, 413)
        self.assertEqual(self.protocols[0].received, b"")

    @defer.inlineCallbacks
    def test_too_many_tunnels_from_one_address(self):
        yield defer.ensureDeferred(self.open())
        yield defer.ensureDeferred(self.open())
        code, body = yield defer.ensureDeferred(self.call(b"POST", b"/t/open", b""))
        self.assertEqual(code, 429)
        self.assertIn(b"too many open tunnels from this address (limit 2)", body)

    @defer.inlineCallbacks
    def test_bad_requests(self):
        tid = yield defer.ensureDeferred(self.open())
        for path, expected in [
            (b"/t/%s/down?from=x" % tid, 400),
            (b"/t/%s/down?from=0&mode=fast" % tid, 400),
            (b"/t/%s/sideways" % tid, 405),
            (b"/t/", 404),
        ]:
            code, _ = yield defer.ensureDeferred(self.call(b"GET", path))
            self.assertEqual(code, expected, path)

    def test_slow_client_is_dropped(self):
        """A request dribbled a byte at a time is cut off at the request deadline."""
        port = self.port.getHost().port

        def dribble():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\n")
                sent = 0
                try:
                    for _ in range(40):
                        s.sendall(b"X")
                        sent += 1
                        time.sleep(0.1)
                except OSError:
                    return sent
                return sent

        d = threads.deferToThread(dribble)
        d.addCallback(lambda sent: self.assertLess(sent, 20))
        return d


class _NoSwitchboard:
    class router:
        live_count = 0
