"""
The agent enforces every grant, whatever the console sends; and bad input
on the session protocol gets a specific error and loses nothing.  Through
a real gateway.
"""

import hashlib
import os

from twisted.protocols import amp
from twisted.trial import unittest

from tests import session_support, support
from tests.session_doubles import AgentUI
from wire import files
from wire import session_commands as sc
from wire.screen import InputEvent


def _file(testcase, size, seed=b"content"):
    path = testcase.mktemp()
    content = support.block(seed, size)
    with open(path, "wb") as f:
        f.write(content)
    return path, content


class WithoutGrantTests(unittest.TestCase):
    timeout = 30

    async def test_every_privileged_command_is_refused_without_its_grant(self):
        s = await session_support.start(self)
        channel = s.console.channel
        attempts = {
            "shell": channel.callRemote(sc.OpenShell, shell_id="s1", columns=80, rows=24),
            "input": channel.callRemote(sc.Input, kind="move", x=1, y=1),
            "send file": channel.callRemote(sc.OfferFile, transfer_id="t1", name="a.txt", size=1, sha256="0" * 64),
            "receive file": channel.callRemote(sc.RequestFile, transfer_id="t2", prompt="please"),
            "system info": channel.callRemote(sc.GetSystemInfo),
            "screen": channel.callRemote(sc.RequestFrames, monitor=0, credit=1),
            "monitors": channel.callRemote(sc.ListMonitors),
            "clipboard": channel.callRemote(sc.Clipboard, text="hi"),
        }
        for what, attempt in attempts.items():
            with self.assertRaises(sc.NotGranted, msg=what):
                await attempt
        self.assertEqual(s.platform.input.events, [])
        self.assertEqual(s.platform.screen.grabs, 0)
        self.assertEqual(os.listdir(s.platform.receive_directory), [])
        self.assertEqual(len([e for e in s.agent.events if e.kind == "refused"]), len(attempts))
        # The session goes on.
        await s.console.send_chat("still here")
        await s.agent_ui.next("chat_received")

    async def test_the_customer_denies_and_the_grant_stays_off(self):
        s = await session_support.start(self, agent_ui=AgentUI(allow={sc.VIEW}))
        answer = await s.console.request_consent([sc.VIEW, sc.SHELL])
        self.assertEqual((answer["granted"], answer["denied"]), ([sc.VIEW], [sc.SHELL]))
        with self.assertRaises(sc.NotGranted):
            await s.console.open_shell()


class RevokeTests(unittest.TestCase):
    timeout = 60

    async def test_revoking_control_mid_drag_stops_input_at_once(self):
        s = await session_support.start(self)
        await s.console.request_consent([sc.VIEW, sc.CONTROL])
        await s.console.send_input(InputEvent("button", x=10, y=10, button="left", pressed=True))
        await s.console.send_input(InputEvent("move", x=20, y=20))
        s.agent.revoke(sc.CONTROL)
        self.assertEqual(s.platform.input.released, 1)
        with self.assertRaises(sc.NotGranted):
            await s.console.send_input(InputEvent("move", x=30, y=30))
        self.assertEqual(len(s.platform.input.events), 2)
        (grants, reason) = await s.console_ui.next("grants_changed", lambda a: sc.CONTROL not in a[0])
        self.assertIn("revoked", reason)
        self.assertIn(sc.VIEW, grants)

    async def test_revoking_file_transfer_mid_file_stops_it_and_removes_the_partial(self):
        s = await session_support.start(self)
        await s.console.request_consent([sc.SEND_FILE])
        path, _ = _file(self, 32 * 1024 * 1024)
        sending = s.console.send_file(path)
        await s.agent_ui.next("transfer_changed", lambda a: a[0] is None and a[1].done > 2 * 1024 * 1024)
        s.agent.revoke(sc.SEND_FILE)
        with self.assertRaises(Exception) as caught:
            await sending
        self.assertIn("revoked", str(caught.exception) + repr(caught.exception))
        (_, transfer) = await s.agent_ui.next("transfer_changed", lambda a: a[0] == "cancelled")
        self.assertLess(transfer.done, transfer.size)
        self.assertEqual(os.listdir(s.platform.receive_directory), [])
        await s.console.send_chat("the session goes on")
        await s.agent_ui.next("chat_received")

    async def test_a_time_limited_grant_runs_out(self):
        s = await session_support.start(self)
        await s.console.request_consent([sc.SYSTEM_INFO], duration=0.2)
        await s.console.system_info()
        (grants, reason) = await s.console_ui.next("grants_changed", lambda a: sc.SYSTEM_INFO not in a[0])
        self.assertIn("ran out", reason)
        with self.assertRaises(sc.NotGranted):
            await s.console.system_info()

    async def test_revoking_the_shell_closes_it(self):
        s = await session_support.start(self)
        await s.console.request_consent([sc.SHELL])
        shell = await s.console.open_shell()
        s.agent.revoke(sc.SHELL)
        await s.console_ui.next("shell_exited")
        with self.assertRaises(sc.NotGranted):
            await s.console.shell_input(shell, b"echo hi\n")


class BadInputTests(unittest.TestCase):
    timeout = 30

    async def _granted(self, *scopes):
        s = await session_support.start(self)
        await s.console.request_consent(list(scopes) or list(sc.SCOPES))
        return s

    async def test_an_unknown_command_is_refused_and_the_session_goes_on(self):
        s = await self._granted()

        class Bogus(amp.Command):
            arguments = [(b"x", amp.Integer())]

        with self.assertRaises(amp.UnhandledCommand):
            await s.console.channel.callRemote(Bogus, x=1)
        await s.console.send_chat("still here")
        await s.agent_ui.next("chat_received")

    async def test_an_oversized_value_is_refused(self):
        s = await self._granted()
        with self.assertRaises(sc.BadRequest):
            await s.console.channel.callRemote(sc.Chat, text="x" * 5000, sent_at=0.0)
        self.assertEqual(s.agent_ui.named("chat_received"), [])

    async def test_an_oversized_message_stops_the_session(self):
        s = await self._granted()

        class Huge(amp.Command):
            arguments = [(b"part%d" % i, amp.String()) for i in range(40)]

        s.console.channel.callRemote(Huge, **{f"part{i}": b"x" * 60000 for i in range(40)}).addErrback(lambda f: None)
        (reason,) = await s.agent_ui.next("ended")
        self.assertIn("larger than", reason)

    async def test_a_chunk_for_an_unknown_transfer(self):
        s = await self._granted()
        with self.assertRaises(sc.UnknownTransfer):
            await s.console.channel.callRemote(sc.FileChunk, transfer_id="nope", offset=0, data=b"x")

    async def test_a_hash_mismatch_leaves_no_file(self):
        s = await self._granted()
        channel = s.console.channel
        await channel.callRemote(sc.OfferFile, transfer_id="t", name="a.txt", size=5, sha256="ab" * 32)
        await channel.callRemote(sc.FileChunk, transfer_id="t", offset=0, data=b"hello")
        with self.assertRaises(sc.TransferFailed) as caught:
            await channel.callRemote(sc.FileDone, transfer_id="t")
        self.assertIn("SHA-256", str(caught.exception))
        self.assertEqual(os.listdir(s.platform.receive_directory), [])

    async def test_a_chunk_at_the_wrong_offset_or_too_large(self):
        s = await self._granted()
        channel = s.console.channel
        await channel.callRemote(sc.OfferFile, transfer_id="t", name="a.txt", size=10, sha256="ab" * 32)
        with self.assertRaises(sc.TransferFailed):
            await channel.callRemote(sc.FileChunk, transfer_id="t", offset=3, data=b"hello")
        await channel.callRemote(sc.OfferFile, transfer_id="u", name="b.txt", size=70000, sha256="cd" * 32)
        with self.assertRaises(sc.TransferFailed):
            await channel.callRemote(sc.FileChunk, transfer_id="u", offset=0, data=b"x" * 62000)

    async def test_path_names_are_reduced_to_a_safe_base_name(self):
        s = await self._granted()
        content = b"not the password file"
        digest = hashlib.sha256(content).hexdigest()
        channel = s.console.channel
        await channel.callRemote(sc.OfferFile, transfer_id="t", name="../../etc/passwd", size=len(content), sha256=digest)
        await channel.callRemote(sc.FileChunk, transfer_id="t", offset=0, data=content)
        await channel.callRemote(sc.FileDone, transfer_id="t")
        self.assertEqual(os.listdir(s.platform.receive_directory), ["passwd"])

    async def test_device_names_are_refused(self):
        s = await self._granted()
        for name in ("CON", "nul.txt", "..", ""):
            with self.assertRaises(sc.Refused, msg=name):
                await s.console.channel.callRemote(sc.OfferFile, transfer_id=name or "x", name=name, size=1, sha256="ab" * 32)

    async def test_malformed_input_events_and_unknown_scopes(self):
        s = await self._granted()
        with self.assertRaises(sc.BadRequest):
            await s.console.channel.callRemote(sc.Input, kind="teleport")
        with self.assertRaises(sc.BadRequest):
            await s.console.channel.callRemote(sc.Input, kind="key", key="a")
        with self.assertRaises(sc.BadRequest):
            await s.console.request_consent(["root"])
        self.assertEqual(s.platform.input.events, [])

    async def test_a_file_is_never_overwritten(self):
        s = await self._granted()
        with open(os.path.join(s.platform.receive_directory, "report.txt"), "wb") as f:
            f.write(b"the customer's own")
        path = os.path.join(self.mktemp())
        os.makedirs(path)
        with open(os.path.join(path, "report.txt"), "wb") as f:
            f.write(b"from the operator")
        await s.console.send_file(os.path.join(path, "report.txt"))
        await s.agent_ui.next("transfer_changed", lambda a: a[0] == "done")
        directory = s.platform.receive_directory
        self.assertEqual(sorted(os.listdir(directory)), ["report (1).txt", "report.txt"])
        with open(os.path.join(directory, "report.txt"), "rb") as f:
            self.assertEqual(f.read(), b"the customer's own")


class ConsoleSideTests(unittest.TestCase):
    timeout = 30

    async def test_the_console_refuses_files_it_did_not_ask_for(self):
        s = await session_support.start(self)
        channel = s.agent.channel
        for attempt in (
            channel.callRemote(sc.OfferFile, transfer_id="t", name="a.txt", size=1, sha256="ab" * 32),
            channel.callRemote(sc.FileChunk, transfer_id="t", offset=0, data=b"x"),
            channel.callRemote(sc.FileDone, transfer_id="t"),
        ):
            with self.assertRaises(sc.Refused):
                await attempt
        await s.agent.send_chat("the session goes on")
        await s.console_ui.next("chat_received")


class DiskFullTests(unittest.TestCase):
    timeout = 30

    async def test_a_full_disk_keeps_what_was_received(self):
        s = await session_support.start(self)
        await s.console.request_consent([sc.SEND_FILE])
        path, content = _file(self, 1024 * 1024)
        original = files.Incoming.write

        def write(incoming, offset, data):
            if offset >= 256 * 1024:
                raise files.DiskFull("no room left to receive it; free some space, then send the file again to resume it")
            return original(incoming, offset, data)

        self.patch(files.Incoming, "write", write)
        with self.assertRaises(sc.TransferFailed) as caught:
            await s.console.send_file(path)
        self.assertIn("free some space", str(caught.exception))
        (partial,) = os.listdir(s.platform.receive_directory)
        with open(os.path.join(s.platform.receive_directory, partial), "rb") as f:
            kept = f.read()
        self.assertGreaterEqual(len(kept), 256 * 1024)
        self.assertEqual(kept, content[: len(kept)])


class ResumeTests(unittest.TestCase):
    timeout = 60

    async def test_a_file_resumes_after_a_dropped_connection(self):
        gateway = support.RunningGateway(self)
        desk = await session_support.logged_in_desk(self, gateway)
        directory = os.path.abspath(self.mktemp())
        path, content = _file(self, 16 * 1024 * 1024, b"resume")
        s = await session_support.start(self, gateway=gateway, desk=desk, receive_directory=directory)
        await s.console.request_consent([sc.SEND_FILE])
        sending = s.console.send_file(path)
        await s.agent_ui.next("transfer_changed", lambda a: a[0] is None and a[1].done > 4 * 1024 * 1024)
        # The customer's network drops.
        s.agent.layers.transport.abortConnection()
        with self.assertRaises(Exception):
            await sending
        (_, dropped) = await s.agent_ui.next("transfer_changed", lambda a: a[0] == "failed")
        self.assertIn("resumes", dropped.detail)
        (partial,) = os.listdir(directory)
        self.assertTrue(partial.startswith(".ponte-partial-"))
        kept = os.path.getsize(os.path.join(directory, partial))
        self.assertGreater(kept, 0)

        # A new session with a new code; the same file is sent again.
        again = await session_support.start(self, gateway=gateway, desk=desk, receive_directory=directory)
        await again.console.request_consent([sc.SEND_FILE])
        done = await again.console.send_file(path)
        self.assertEqual(done.outcome, "done")
        self.assertEqual(os.listdir(directory), [os.path.basename(path)])
        with open(os.path.join(directory, os.path.basename(path)), "rb") as f:
            self.assertEqual(f.read(), content)
        # It went on from what the first session had written.
        (_, first) = again.agent_ui.named("transfer_changed")[0]
        self.assertEqual(first.done, kept)
