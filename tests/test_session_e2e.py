"""
Whole sessions through a real gateway over TLS on 127.0.0.1: the
end-to-end channel, the code confirmation and every part of the session
protocol, with the gateway's relayed bytes recorded.
"""

import hashlib

from twisted.internet import defer
from twisted.trial import unittest

from tests import session_doubles, session_support, support
from wire import session_commands as sc
from wire.screen import Frame, InputEvent, Tile

CANARY = "ponte-canary-7f3a9c"


class FullSessionTests(unittest.TestCase):
    timeout = 120

    async def test_everything_reaches_the_other_side_and_the_gateway_sees_only_ciphertext(self):
        tap = session_support.Tap(self)
        s = await session_support.start(self)
        secret = s.desk.codes[s.routing].secret
        inner = s.agent.channel.transport.getHandle()
        self.assertEqual(inner.get_protocol_version_name(), "TLSv1.3")
        self.assertIn("MLKEM", inner.get_group_name())
        granted = await s.console.request_consent(list(sc.SCOPES), everything=True)
        self.assertEqual(sorted(granted["granted"]), sorted(sc.SCOPES))
        await s.console_ui.next("grants_changed", lambda a: len(a[0]) == len(sc.SCOPES))

        # Chat both ways.
        await s.console.send_chat(f"hello from the operator {CANARY}")
        await s.agent.send_chat(f"hello from the customer {CANARY}")
        (got,) = await s.agent_ui.next("chat_received")
        self.assertEqual(got.text, f"hello from the operator {CANARY}")
        (got,) = await s.console_ui.next("chat_received")
        self.assertEqual(got.text, f"hello from the customer {CANARY}")

        # A 20 MiB file each way, with the canary inside.
        content = (CANARY.encode() + support.block(b"file", 20 * 1024 * 1024))[: 20 * 1024 * 1024]
        source = self.mktemp()
        with open(source, "wb") as f:
            f.write(content)
        sent = await s.console.send_file(source)
        self.assertEqual(sent.outcome, "done")
        (_, arrived) = await s.agent_ui.next("transfer_changed", lambda a: a[0] == "done")
        with open(arrived.detail, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(content).hexdigest())
        s.agent_ui.picked = source
        await s.console.request_file("please send the log")
        (_, back) = await s.console_ui.next("transfer_changed", lambda a: a[0] == "done" and a[1].direction == "in")
        with open(back.detail, "rb") as f:
            self.assertEqual(f.read(), content)

        # A shell command's output.
        shell = await s.console.open_shell(80, 24)
        await s.console.resize_shell(shell, 100, 30)
        await s.console.shell_input(shell, b"stty size\n")
        await support.wait_for(lambda: b"30 100" in b"".join(a[1] for a in s.console_ui.named("shell_output")))
        await s.console.shell_input(shell, f"echo {CANARY[:5]}''{CANARY[5:]}; exit 3\n".encode())
        await s.console_ui.next("shell_exited")
        output = b"".join(a[1] for a in s.console_ui.named("shell_output"))
        self.assertIn(CANARY.encode(), output)
        self.assertEqual(s.console_ui.named("shell_exited")[0][1:], (3, None))

        # System information.
        info = await s.console.system_info()
        self.assertEqual(info.hostname, "customer-pc")

        # A frame update, and an input event.
        monitors = await s.console.monitors()
        self.assertEqual([m.index for m in monitors], [0, 1])
        await s.console.watch(0, credit=1)
        (frame,) = await s.console_ui.next("frame_received")
        self.assertEqual((frame.width, frame.height), (64, 32))
        self.assertEqual(frame.tiles[0].data, s.platform.screen.pattern * 256)
        self.assertEqual(await s.console_ui.next("cursor_moved"), (7, 9, True, "arrow"))
        await s.console.send_input(InputEvent("button", x=5, y=6, button="left", pressed=True))
        self.assertEqual(s.platform.input.events, [InputEvent("button", x=5, y=6, button="left", pressed=True)])

        # End from the console: both sides see it; nothing runs any more, and
        # the customer's rating still reaches the operator.
        s.console.end("done, thank you")
        (reason,) = await s.agent_ui.next("ended")
        self.assertIn("done, thank you", reason)
        with self.assertRaises(sc.NotVerified):
            await s.console.channel.callRemote(sc.Chat, text="too late", sent_at=0.0)
        await s.agent.close_with_rating(5, "quick and clear")
        self.assertEqual(await s.console_ui.next("rated"), (5, "quick and clear"))
        await defer.gatherResults([s.agent.ended, s.console.ended])

        relayed = tap.everything()
        self.assertGreater(len(relayed), 40 * 1024 * 1024)
        self.assertNotIn(CANARY.encode(), relayed)
        self.assertNotIn(CANARY.encode("utf-16-le"), relayed)
        self.assertNotIn((s.routing + secret).encode(), relayed)

    async def test_the_secret_part_never_reaches_the_gateway(self):
        """
        Every byte the console and the agent send the gateway (control
        connections in plaintext, and the relayed stream) is recorded: the
        secret part is in none of them.  It is 8 characters here, so that
        it cannot turn up by chance.
        """
        from gateway import protocol

        plaintext = bytearray()
        original = protocol.GatewayProtocol.dataReceived

        def dataReceived(self_, data):
            plaintext.extend(data)
            original(self_, data)

        self.patch(protocol.GatewayProtocol, "dataReceived", dataReceived)
        tap = session_support.Tap(self)
        gateway = support.RunningGateway(self, secret_length=8)
        s = await session_support.start(self, gateway=gateway)
        await s.console.send_chat("hello")
        await s.agent_ui.next("chat_received")
        secret = s.desk.codes[s.routing].secret.encode()
        self.assertEqual(len(secret), 8)
        self.assertIn(s.routing.encode(), plaintext)
        self.assertNotIn(secret, bytes(plaintext))
        self.assertNotIn(secret, tap.everything())

    async def test_a_gateway_cannot_shorten_the_secret_part(self):
        gateway = support.RunningGateway(self, secret_length=1)
        s = await session_support.start(self, gateway=gateway)
        self.assertEqual(len(s.desk.codes[s.routing].secret), 3)
        self.assertEqual(s.agent.state, "verified")


class _IdleScreen(session_doubles.Screen):
    """Monitor 0 changes once, then stays still until stop(); monitor 1 always has a frame."""

    def __init__(self):
        super().__init__()
        self.waiting = None
        self.shown = set()

    def next_frame(self, monitor):
        if monitor == 1 or monitor not in self.shown:
            self.shown.add(monitor)
            return super().next_frame(monitor)
        self.waiting = defer.Deferred()
        return self.waiting

    def stop(self):
        super().stop()
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            waiting.callback(Frame(0, 64, 32, ()))


class MonitorTests(unittest.TestCase):
    timeout = 30

    async def test_switching_monitors_while_the_old_one_is_idle(self):
        s = await session_support.start(self)
        s.platform.screen = screen = _IdleScreen()
        await s.console.request_consent([sc.VIEW])
        await s.console.watch(0, credit=4)
        await s.console_ui.next("frame_received", lambda a: a[0].monitor == 0)
        await support.wait_for(lambda: screen.waiting is not None)
        await s.console.watch(1, credit=1)
        (frame,) = await s.console_ui.next("frame_received", lambda a: a[0].monitor == 1)
        self.assertEqual(frame.monitor, 1)


class _BigTiles(session_doubles.Screen):
    """A first frame like a real desktop's: more tile data than one AMP value holds."""

    def next_frame(self, monitor):
        self.grabs += 1
        tiles = tuple(Tile(16 * i, 0, 16, 16, "png", bytes([i]) * 25000) for i in range(4))
        return defer.succeed(Frame(monitor, 64, 32, tiles))


class LargeFrameTests(unittest.TestCase):
    timeout = 30

    async def test_a_frame_larger_than_one_amp_value_arrives_whole(self):
        s = await session_support.start(self)
        s.platform.screen = _BigTiles()
        await s.console.request_consent([sc.VIEW])
        await s.console.watch(0, credit=1)
        (frame,) = await s.console_ui.next("frame_received")
        self.assertEqual([t.data[:1] for t in frame.tiles], [bytes([i]) for i in range(4)])
        self.assertEqual(sum(len(t.data) for t in frame.tiles), 100000)
