"""`ponte-agent --check` against a real gateway and a real proxy."""

import io

from twisted.internet import defer, reactor
from twisted.trial import unittest

from agent import main
from tests import proxies, support


class AgentCheckTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        self.gateway = support.RunningGateway(self)
        self.ca = self.mktemp()
        with open(self.ca, "wb") as f:
            f.write(self.gateway.ca)

    def options(self, *extra):
        g = self.gateway
        return main.parser().parse_args(
            ["--check", "--ca", self.ca, "--raw-port", str(g.port), "--https-port", str(g.https_port),
             "--http-port", str(g.http_port), *extra]
        )

    @defer.inlineCallbacks
    def test_every_way_reported(self):
        port = yield defer.ensureDeferred(proxies.tinyproxy(self, connect_ports=[self.gateway.https_port]))
        out = io.StringIO()
        status = yield defer.ensureDeferred(
            main.check(reactor, self.options("--proxy", f"http://127.0.0.1:{port}"), out)
        )
        text = out.getvalue()
        self.assertEqual(status, 0, text)
        lines = text.splitlines()
        self.assertEqual(lines[0], f"ways to localhost (proxy 127.0.0.1:{port}):")
        self.assertEqual([line.split()[:2] for line in lines[1:6]],
                         [["ok", "raw"], ["ok", "https-port"], ["ok", "connect"], ["ok", "tunnel"], ["ok", "tunnel-proxy"]])
        self.assertIn("<- chosen", lines[1])
        self.assertEqual(lines[-1], "a session would use: raw")

    @defer.inlineCallbacks
    def test_nothing_works(self):
        out = io.StringIO()
        options = self.options()
        options.raw_port = options.https_port = 1
        status = yield defer.ensureDeferred(main.check(reactor, options, out))
        self.assertEqual(status, 1)
        self.assertIn("fail raw", out.getvalue())
        self.assertTrue(out.getvalue().endswith("no way to the gateway works\n"))

    def test_bad_arguments(self):
        self.assertEqual(main.main(["--check", "--ca", "/nonexistent"]), 2)
