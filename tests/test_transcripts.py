"""
Transcript upload and problem reports through a real gateway: a session
between a real console core and agent core, then the desk's
C{upload_transcript} (stored sealed: no plaintext in the database; opens
with the key; only the session's operator may upload; limits) and
C{report_problem} (stored, listed and shown by C{ponte-admin}).
"""

import io
import json
import os
import random
import stat
import string
import zlib

from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from gateway import admin, records
from tests import session_support, support
from wire import commands
from wire.session_core import ChatMessage, Event

SECRET_CHAT = "my locker code is 4711-PLUM and the printer is HP-Floor2"
NOTES = "Replaced the spooler driver; customer will call back if it fails again."


def database_bytes(gateway: support.RunningGateway) -> bytes:
    """Everything SQLite wrote: the database file and its write-ahead log."""
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = gateway.config.database + suffix
        if os.path.exists(path):
            with open(path, "rb") as f:
                data += f.read()
    return data


def run_admin(testcase, gateway, *argv, expect=0) -> str:
    out, err = io.StringIO(), io.StringIO()
    testcase.patch(admin.sys, "stderr", err)
    status = admin.main(["--state", gateway.config.state_dir, *argv], out=out)
    testcase.assertEqual(status, expect, err.getvalue())
    return out.getvalue() + err.getvalue()


class TranscriptTests(unittest.TestCase):
    timeout = 60

    async def session(self, **overrides):
        """A real session (console and agent cores through the gateway) with chat, then ended."""
        gateway = support.RunningGateway(self, **overrides)
        s = await session_support.start(self, gateway)
        await s.console.send_chat(SECRET_CHAT)
        await s.agent.send_chat("thank you — merci")
        await support.wait_for(lambda: len(s.console.chat) == 2)
        s.console.end("done")
        await s.agent_ui.next("ended")
        await s.agent.close_with_rating(5, "quick")
        await defer.gatherResults([s.agent.ended, s.console.ended])
        await support.wait_for(lambda: s.gateway.switchboard.router.get(s.routing).state.value == "ended")
        return s

    def session_id(self, s) -> str:
        return s.gateway.switchboard.router.get(s.routing).session_id

    @defer.inlineCallbacks
    def test_upload_is_stored_sealed(self):
        """The transcript is stored with the session, encrypted; the key (0600, made at first use) opens it."""
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        s = yield defer.ensureDeferred(self.session())
        key_path = os.path.join(s.gateway.config.state_dir, "transcripts.key")
        self.assertFalse(os.path.exists(key_path))
        size = yield defer.ensureDeferred(s.desk.upload_transcript(s.routing, s.console.chat, s.console.events, NOTES))
        self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600)
        session_id = self.session_id(s)

        stored = database_bytes(s.gateway)
        for secret in (SECRET_CHAT, NOTES, "4711-PLUM"):
            self.assertNotIn(secret.encode("utf-8"), stored)
        row = yield s.gateway.service.store.get_transcript(session_id)
        self.assertEqual((row["operator"], row["size"]), ("alice", size))
        key = records.TranscriptKey.load(key_path)
        document = json.loads(key.open(session_id, row["nonce"], row["sealed"], row["key_id"]))
        self.assertEqual(document["notes"], NOTES)
        self.assertEqual([(m["author"], m["text"]) for m in document["chat"]],
                         [("operator", SECRET_CHAT), ("customer", "thank you — merci")])
        self.assertEqual([e["kind"] for e in document["events"]], [e.kind for e in s.console.events])
        self.assertIn("verified", [e["kind"] for e in document["events"]])
        # Sealed for its session only, and not readable as plain zlib either.
        with self.assertRaises(records.TranscriptKeyError):
            key.open("another-session", row["nonce"], row["sealed"])
        with self.assertRaises(zlib.error):
            zlib.decompress(row["sealed"])
        # The key never appears in the log.
        with open(key_path) as f:
            key_text = f.read().strip()
        self.assertFalse([e for e in logged if key_text in repr(e)])
        # The administrator reads it back.
        shown = run_admin(self, s.gateway, "transcript", "show", session_id)
        self.assertIn(f"operator: {SECRET_CHAT}", shown)
        self.assertIn(NOTES, shown)
        self.assertIn(session_id, run_admin(self, s.gateway, "transcript", "list"))
        as_json = json.loads(run_admin(self, s.gateway, "transcript", "show", session_id, "--json"))
        self.assertEqual(as_json, document)
        kinds = [e[1] for e in (yield s.gateway.service.store.events())]
        self.assertIn("transcript", kinds)

    @defer.inlineCallbacks
    def test_large_transcript_in_parts_and_replaced(self):
        """A transcript of hundreds of KiB travels in parts; a second upload replaces the first."""
        s = yield defer.ensureDeferred(self.session())
        rnd = random.Random(3)
        chat = [ChatMessage("operator" if i % 2 else "customer",
                            "".join(rnd.choice(string.ascii_letters) for _ in range(400)), 1000.0 + i)
                for i in range(1500)]
        events = [Event(1000.0 + i, "file", f"report-{i}.pdf") for i in range(500)]
        parts = []
        real = s.desk.control.callRemote

        def counting(command, **arguments):
            if command is commands.UploadTranscript:
                parts.append(arguments["part"])
            return real(command, **arguments)

        s.desk.control.callRemote = counting
        size = yield defer.ensureDeferred(s.desk.upload_transcript(s.routing, chat, events, "long one"))
        self.assertGreater(size, 600_000)
        self.assertGreater(len(parts), 3)
        self.assertEqual(parts, list(range(len(parts))))
        yield defer.ensureDeferred(s.desk.upload_transcript(s.routing, chat[:2], [], "short one"))
        row = yield s.gateway.service.store.get_transcript(self.session_id(s))
        key = records.TranscriptKey.load(s.gateway.config.transcript_key_path)
        document = json.loads(key.open(row["session_id"], row["nonce"], row["sealed"]))
        self.assertEqual((document["notes"], len(document["chat"])), ("short one", 2))

    @defer.inlineCallbacks
    def test_only_the_owner_uploads(self):
        """Another operator gets NOT_YOUR_SESSION; unknown or never-paired codes UNKNOWN_CODE."""
        s = yield defer.ensureDeferred(self.session())
        bob = yield defer.ensureDeferred(session_support.logged_in_desk(self, s.gateway, "bob"))
        with self.assertRaises(commands.NotYourSession):
            yield defer.ensureDeferred(bob.upload_transcript(s.routing, s.console.chat, s.console.events, "mine"))
        self.assertIsNone((yield s.gateway.service.store.get_transcript(self.session_id(s))))
        unused = yield defer.ensureDeferred(s.desk.new_code())
        with self.assertRaises(commands.UnknownCode) as raised:
            yield defer.ensureDeferred(s.desk.upload_transcript(unused.routing, [], [], ""))
        self.assertIn("no session took place", str(raised.exception))
        with self.assertRaises(commands.UnknownCode):
            yield defer.ensureDeferred(s.desk.upload_transcript("ZZZZ", [], [], ""))
        anonymous = yield s.gateway.connect(self)
        yield anonymous.hello(commands.ROLE_OPERATOR)
        with self.assertRaises(commands.NotLoggedIn):
            yield anonymous.callRemote(commands.UploadTranscript, routing=s.routing, part=0, parts=1, size=0,
                                       data=b"")

    @defer.inlineCallbacks
    def test_limits(self):
        """Too large: a clear error naming the limit, before any part is kept; bad parts: BAD_UPLOAD."""
        s = yield defer.ensureDeferred(self.session(max_transcript_bytes=4000))
        big = [ChatMessage("operator", "x" * 5000, 1.0)]
        with self.assertRaises(commands.TooLarge) as raised:
            yield defer.ensureDeferred(s.desk.upload_transcript(s.routing, big, [], ""))
        self.assertIn("at most 4000 bytes", str(raised.exception))
        control = s.desk.control
        document = b'{"chat": [], "events": [], "notes": "n"}'
        data = zlib.compress(document)
        with self.assertRaises(commands.BadUpload) as raised:
            yield control.callRemote(commands.UploadTranscript, routing=s.routing, part=1, parts=2,
                                     size=len(document), data=data)
        self.assertIn("out of order", str(raised.exception))
        with self.assertRaises(commands.BadUpload):
            yield control.callRemote(commands.UploadTranscript, routing=s.routing, part=0, parts=1,
                                     size=len(document) + 1, data=data)
        with self.assertRaises(commands.BadUpload) as raised:
            bad = b'["not", "an", "object"]'
            yield control.callRemote(commands.UploadTranscript, routing=s.routing, part=0, parts=1,
                                     size=len(bad), data=zlib.compress(bad))
        self.assertIn("not a JSON object", str(raised.exception))
        bomb = zlib.compress(b" " * 3000)
        with self.assertRaises(commands.BadUpload):
            yield control.callRemote(commands.UploadTranscript, routing=s.routing, part=0, parts=1, size=10,
                                     data=bomb)
        # The connection is still good, and a fitting transcript is stored.
        answer = yield control.callRemote(commands.UploadTranscript, routing=s.routing, part=0, parts=1,
                                          size=len(document), data=data)
        self.assertEqual(answer, {"received": len(data), "stored": True})


class ProblemReportTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_report_is_stored_and_listed(self):
        gateway = support.RunningGateway(self, problem_reports_per_hour=2)
        desk = yield defer.ensureDeferred(session_support.logged_in_desk(self, gateway))
        log = "".join(f"2025-01-01 10:{i % 60:02d} console: line {i} of the log ünïcode\n" for i in range(3000))
        number = yield defer.ensureDeferred(desk.report_problem(log))
        self.assertEqual(number, 1)
        listed = run_admin(self, gateway, "problems", "list")
        self.assertIn("alice", listed)
        self.assertIn("127.0.0.1", listed)
        shown = run_admin(self, gateway, "problems", "show", "1")
        self.assertIn("line 2999 of the log ünïcode", shown)
        self.assertIn("problem report #1 from alice", shown)
        # Only the end of a log larger than the limit, from a whole line.
        second = yield defer.ensureDeferred(desk.report_problem(log, limit=1000))
        report = run_admin(self, gateway, "problems", "show", str(second))
        body = report.split("\n\n", 1)[1]
        self.assertLessEqual(len(body.encode("utf-8")), 1001)
        self.assertTrue(body.startswith("2025-01-01"))
        self.assertTrue(body.rstrip().endswith("line 2999 of the log ünïcode"))
        # Two an hour here.
        with self.assertRaises(commands.RateLimited) as raised:
            yield defer.ensureDeferred(desk.report_problem("third"))
        self.assertIn("at most 2 problem reports an hour", str(raised.exception))
        self.assertIsNotNone(commands.RateLimited.retry_after(str(raised.exception)))
        rows = yield gateway.service.store.problem_reports()
        self.assertEqual([r[0] for r in rows], [1, 2])
        run_admin(self, gateway, "problems", "show", "9", expect=1)

    @defer.inlineCallbacks
    def test_too_large(self):
        gateway = support.RunningGateway(self, max_problem_report_bytes=500)
        desk = yield defer.ensureDeferred(session_support.logged_in_desk(self, gateway))
        with self.assertRaises(commands.TooLarge) as raised:
            yield defer.ensureDeferred(desk.report_problem("x" * 600))
        self.assertIn("at most 500 bytes", str(raised.exception))
        self.assertEqual((yield defer.ensureDeferred(desk.report_problem("x" * 600, limit=500))), 1)


class KeyTests(unittest.TestCase):
    def test_init_makes_the_key_and_never_replaces_it(self):
        state = self.mktemp()
        out, err = io.StringIO(), io.StringIO()
        self.patch(admin.sys, "stderr", err)
        self.assertEqual(admin.main(["--state", state, "init"], out=out), 0, err.getvalue())
        path = os.path.join(state, "transcripts.key")
        self.assertIn(f"made the transcript key {path}", out.getvalue())
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            key = f.read()
        self.assertEqual(len(key.strip()), 64)
        self.assertNotIn(key.strip(), out.getvalue())
        out = io.StringIO()
        self.assertEqual(admin.main(["--state", state, "init", "--force"], out=out), 0, err.getvalue())
        self.assertIn("kept the transcript key", out.getvalue())
        with open(path) as f:
            self.assertEqual(f.read(), key)

    def test_bad_key_file(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("not hex\n")
        with self.assertRaises(records.TranscriptKeyError) as raised:
            records.TranscriptKey.load(path)
        self.assertIn("64 hexadecimal digits", str(raised.exception))
        other = records.TranscriptKey(b"\x01" * 32)
        key = records.TranscriptKey(b"\x02" * 32)
        nonce, sealed = key.seal("s1", b"{}")
        with self.assertRaises(records.TranscriptKeyError) as raised:
            other.open("s1", nonce, sealed, key.key_id)
        self.assertIn("sealed with key", str(raised.exception))
        self.assertEqual(key.open("s1", nonce, sealed, key.key_id), b"{}")
        self.assertNotIn("02020202", repr(key))
