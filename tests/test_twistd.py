"""
The real `twistd -n ponte` process, from a temporary configuration and
state directory: it serves clients, and it fails at start with one line.
"""

import os
import re
import signal
import sys

from twisted.internet import defer, error, protocol, reactor
from twisted.trial import unittest

from tests import support
from wire import client, commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class Twistd(protocol.ProcessProtocol):
    """A twistd process whose output is collected and watched."""

    def __init__(self):
        self.output = b""
        self.ended = defer.Deferred()
        self._waiting = []

    def outReceived(self, data):
        self.output += data
        self._check()

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)
        for pattern, d in self._waiting:
            if not d.called:
                d.errback(AssertionError(f"twistd ended before printing {pattern!r}:\n{self.text}"))

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def wait_for(self, pattern: str) -> defer.Deferred:
        """Fires with the match of C{pattern} in the output, once it appears."""
        d = defer.Deferred()
        self._waiting.append((pattern, d))
        self._check()
        return d

    def _check(self):
        for pattern, d in self._waiting:
            found = re.search(pattern, self.text)
            if found and not d.called:
                d.callback(found)


def _directory(testcase) -> str:
    path = testcase.mktemp()
    os.makedirs(path)
    return path


def start(testcase, config_path) -> Twistd:
    """Start `twistd -n ponte --config config_path`; stopped at the end of the test."""
    process = Twistd()
    transport = reactor.spawnProcess(
        process,
        TWISTD,
        [TWISTD, "--nodaemon", "--pidfile=", "ponte", "--config", config_path],
        env={"PYTHONPATH": ROOT, "PATH": os.environ.get("PATH", "")},
        path=_directory(testcase),
    )

    def stop():
        if not process.ended.called:
            try:
                transport.signalProcess(signal.SIGTERM)
            except error.ProcessExitedAlready:
                pass
        return process.ended

    testcase.addCleanup(stop)
    return process


class TwistdTests(unittest.TestCase):
    timeout = 60

    def config(self, listen="tcp:0:interface=127.0.0.1", **sections) -> str:
        state = os.path.abspath(self.mktemp())
        layout = support.make_state(state)
        text = (
            f"[gateway]\nstate_dir = {state}\n"
            f"[listen]\nraw = {listen}\nhttps = tcp:0:interface=127.0.0.1\nhttp = tcp:0:interface=127.0.0.1\n"
            f"[tls]\ncertificate = {layout.path('gateway.crt')}\nkey = {layout.path('gateway.key')}\n"
        )
        for section, body in sections.items():
            text += f"[{section}]\n{body}\n"
        path = os.path.join(state, "ponte.conf")
        with open(path, "w") as f:
            f.write(text)
        self.ca = open(layout.path(layout.ca_certificate), "rb").read()
        return path

    @defer.inlineCallbacks
    def test_serves_clients(self):
        """An operator logs in and makes a code; an agent looks it up."""
        process = start(self, self.config(organisation="name = Acme Support"))
        found = yield process.wait_for(r"listening for the ponte protocol over TLS on 127\.0\.0\.1:(\d+)")
        port = int(found.group(1))
        operator = yield client.connect(reactor, "127.0.0.1", port, self.ca)
        self.addCleanup(support.close, operator)
        yield operator.hello(commands.ROLE_OPERATOR)
        who = yield operator.callRemote(commands.Login, username="alice", password=support.PASSWORD)
        self.assertEqual(who, {"display_name": "Alice Agostini", "organisation": "Acme Support", "record_sessions": False})
        created = yield operator.callRemote(commands.CreateSession)
        agent = yield client.connect(reactor, "localhost", port, self.ca)
        self.addCleanup(support.close, agent)
        yield agent.hello(commands.ROLE_AGENT)
        waiting = yield agent.callRemote(commands.Lookup, routing=created["routing"])
        self.assertEqual(waiting["operator_name"], "Alice Agostini")
        self.assertNotIn(created["routing"], process.text)
        self.assertNotIn(support.PASSWORD, process.text)

    @defer.inlineCallbacks
    def test_bad_key_exits_with_one_line(self):
        process = start(self, self.config(codes="routing_lenght = 4"))
        code = yield process.ended
        self.assertNotEqual(code, 0)
        last = process.text.strip().splitlines()[-1]
        self.assertTrue(last.startswith("ponte: "), last)
        self.assertTrue(last.endswith("ponte.conf: [codes] routing_lenght is not a known key"), last)
        self.assertNotIn("Traceback", process.text)

    @defer.inlineCallbacks
    def test_port_in_use_exits_with_one_line(self):
        first = start(self, self.config())
        found = yield first.wait_for(r"listening for the ponte protocol over TLS on 127\.0\.0\.1:(\d+)")
        second = start(self, self.config(listen=f"tcp:{found.group(1)}:interface=127.0.0.1"))
        code = yield second.ended
        self.assertNotEqual(code, 0)
        last = second.text.strip().splitlines()[-1]
        self.assertIn(f"ponte: cannot listen for the ponte protocol over TLS on tcp:{found.group(1)}", last)
        self.assertIn("Address already in use", last)
        self.assertNotIn("Traceback", second.text)
