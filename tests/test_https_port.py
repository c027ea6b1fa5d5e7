"""
The HTTPS port: one TLS port that serves the ponte protocol and HTTP,
decided by the first byte; over real sockets on 127.0.0.1.
"""

import socket
import ssl

from twisted.internet import defer, reactor, threads
from twisted.protocols import amp
from twisted.trial import unittest
from twisted.web import client as web_client

from tests import support
from wire import client, commands, https

MiB = 1 << 20


def blocking_tls(port: int, ca: bytes) -> ssl.SSLSocket:
    """A verified TLS connection with the standard library (one record per send)."""
    context = ssl.create_default_context(cadata=ca.decode("ascii"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def read_until_closed(sock: ssl.SSLSocket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ssl.SSLError, OSError):
        pass
    return data


class HTTPSPortTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.gateway = support.RunningGateway(self, handshake_timeout=1.0)

    @defer.inlineCallbacks
    def test_health(self):
        agent = web_client.Agent(reactor, contextFactory=https.Policy(self.gateway.ca))
        response = yield agent.request(b"GET", f"https://localhost:{self.gateway.https_port}/health".encode())
        body = yield web_client.readBody(response)
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b'{"status": "ok", "live_codes": 0}')
        missing = yield agent.request(b"GET", f"https://localhost:{self.gateway.https_port}/nope".encode())
        yield web_client.readBody(missing)
        self.assertEqual(missing.code, 404)

    @defer.inlineCallbacks
    def test_agent_on_https_port_pairs_with_operator_on_raw_port(self):
        """A leg from each port splices; bytes arrive intact both ways."""
        agent = yield client.connect(reactor, "localhost", self.gateway.https_port, self.gateway.ca)
        self.addCleanup(support.close, agent)
        yield agent.hello(commands.ROLE_AGENT)
        to_agent, to_operator = support.Receiver(4 * MiB), support.Receiver(4 * MiB)
        agent_leg = support.TestAgentLeg(to_agent.received)
        operator_leg = support.StreamLeg(to_operator.received)
        _, _, routing = yield defer.ensureDeferred(
            support.pair(self.gateway, self, agent_leg, operator_leg, agent=agent)
        )
        up = support.Sender(agent_leg.transport, 4 * MiB, b"up")
        down = support.Sender(operator_leg.transport, 4 * MiB, b"down")
        up.start()
        down.start()
        sent_up, sent_down, got_up, got_down = yield defer.gatherResults(
            [up.done, down.done, to_operator.done, to_agent.done]
        )
        self.assertEqual((sent_up, sent_down), (got_up, got_down))
        kinds = yield self.gateway.service.store.events("join")
        self.assertEqual(len(kinds), 1)
        session = yield self.gateway.service.store.get_session(
            self.gateway.switchboard.router.get(routing).session_id
        )
        self.assertEqual((session["agent_transport"], session["operator_transport"]), ("https-port", "tls"))

    def test_clients_offering_alpn(self):
        """Browsers and curl offer ALPN: HTTP/1.1 is chosen, or none at all."""

        def health(protocols):
            context = ssl.create_default_context(cadata=self.gateway.ca.decode("ascii"))
            context.set_alpn_protocols(protocols)
            raw = socket.create_connection(("127.0.0.1", self.gateway.https_port), timeout=10)
            with context.wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                return sock.selected_alpn_protocol(), read_until_closed(sock)

        def check(results):
            (chosen, answer), (none, other) = results
            self.assertEqual((chosen, none), ("http/1.1", None))
            for reply in (answer, other):
                self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK"), reply[:40])

        d = defer.gatherResults(
            [threads.deferToThread(health, ["h2", "http/1.1"]), threads.deferToThread(health, ["h2"])]
        )
        return d.addCallback(check)

    def test_hello_in_one_byte_records(self):
        """A Hello split into one-byte TLS records is put back together."""
        box = amp.AmpBox(_command=b"Hello", _ask=b"1", version=b"1", role=b"agent").serialize()

        def exchange():
            with blocking_tls(self.gateway.https_port, self.gateway.ca) as sock:
                for i in range(len(box)):
                    sock.send(box[i : i + 1])
                return sock.recv(65536)

        d = threads.deferToThread(exchange)
        d.addCallback(lambda answer: self.assertIn(b"_answer", answer))
        return d

    def test_http_on_the_raw_port_is_refused(self):
        """The raw port speaks only the ponte protocol; HTTP gets the connection closed."""

        def exchange():
            with blocking_tls(self.gateway.port, self.gateway.ca) as sock:
                sock.send(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return read_until_closed(sock)

        d = threads.deferToThread(exchange)
        d.addCallback(lambda answer: self.assertEqual(answer, b""))
        return d

    def test_silent_connection_on_the_https_port_is_dropped(self):
        def exchange():
            with blocking_tls(self.gateway.https_port, self.gateway.ca) as sock:
                return read_until_closed(sock)

        d = threads.deferToThread(exchange)
        d.addCallback(lambda answer: self.assertEqual(answer, b""))
        return d
