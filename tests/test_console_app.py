"""
The operator's journey with the real C{ponte-console} program on a private
Xvfb, against a test gateway and a customer's agent core in the test: log
in (and every way it can fail), make a code and copy it, the customer
joins and is announced, pick-up opens the session window and the code is
confirmed, an expired code, a cancelled one, SIGTERM.  Screenshots of each
window are saved (see L{tests.agent_driver}).
"""

import json
import os
import re
import socket
import stat
import time

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from agent.session import AgentSession
from console import login_window, settings
from gateway import passwords, records, totp
from tests import console_driver, e2e_support, session_support, support, xvfb
from tests.agent_driver import deferLater
from tests.session_doubles import AgentUI, Platform
from wire import client, commands

# xdotool matches titles as regular expressions on bytes: no em dash in them.
LOGIN = "^Ponte console .*log in$"
TITLE = "^Ponte console .*Alice Agostini$"
WAITING = r"^\(1\) Ponte console .*Alice Agostini$"
# The code shown large.
CODE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{3}$")


class _ConsoleTest(unittest.TestCase):
    timeout = 120

    def start(self, ca=None, extra=(), **gateway_options):
        self.server = xvfb.start(self)
        self.gateway = support.RunningGateway(self, **gateway_options)
        return console_driver.program(self, self.server, self.gateway, ca=ca, extra=extra)

    async def log_in(self, console, username="alice", password=support.PASSWORD, screenshot=None):
        window = await console.window(LOGIN)
        await console.type(window, username)
        await console.keys(window, "Tab")
        await console.type(window, password)
        if screenshot:
            await console.screenshot(screenshot)
        await console.keys(window, "Return")
        return window

    async def new_code(self, console, window) -> str:
        """Alt+N, then Alt+C: the code shown, as read from the clipboard."""
        await console.keys(window, "alt+n")
        await console.wait_for_text(CODE)
        await console.keys(window, "alt+c")
        for _ in range(50):
            shown = await console.clipboard()
            if shown:
                return shown
            await deferLater(0.1)
        self.fail("nothing on the clipboard")


class LoginTests(_ConsoleTest):
    async def test_wrong_password_then_the_right_one(self):
        console = self.start()
        window = await self.log_in(console, password="not the password", screenshot="console-1-login-typed")
        texts = await console.wait_for_text("Wrong user name or password.")
        await console.screenshot("console-2-login-wrong-password")
        self.assertNotIn("not the password", texts, "the password field is emptied")
        self.assertIn("alice", texts)
        # The process stays, the password field has the focus: a second try works.
        await console.type(window, support.PASSWORD)
        await console.keys(window, "Return")
        await console.window(TITLE)
        texts = await console.wait_for_text("Connected to 127.0.0.1 (direct)")
        await console.screenshot("console-3-desk")
        self.assertIn("Connected to 127.0.0.1 (direct) as Alice Agostini, Test Org.", texts)
        # The settings are remembered for the next run, readable by the owner only, without the password.
        path = os.path.join(console.home, "config", "ponte", "console.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertNotIn(support.PASSWORD, text)
        saved = json.loads(text)
        self.assertEqual((saved["gateway"], saved["username"], saved["ca"]), ("127.0.0.1", "alice", console.ca_path))
        # SIGTERM: a clean exit.
        console.process.signalProcess("TERM")
        self.assertEqual(await console.exit.ended, 0)

    async def test_the_user_name_is_remembered(self):
        console = self.start()
        await self.log_in(console)
        await console.window(TITLE)
        await console.close(await console.window(TITLE))
        self.assertEqual(await console.exit.ended, 0)
        again = console_driver.program(self, self.server, self.gateway, home=console.home)
        window = await again.window(LOGIN)
        texts = await again.texts()
        self.assertIn("alice", texts)
        # The focus is on the password.
        await again.type(window, support.PASSWORD)
        await again.keys(window, "Return")
        await again.window(TITLE)

    async def test_a_disabled_account(self):
        console = self.start()
        await self.log_in(console, username="carol")
        await console.wait_for_text("This account is disabled")
        await console.screenshot("console-4-login-disabled")

    async def test_too_many_attempts_count_down(self):
        console = self.start(failed_logins_per_minute=1)
        window = await self.log_in(console, password="wrong 1")
        await console.wait_for_text("Wrong user name or password.")
        await console.type(window, "wrong 2")
        await console.keys(window, "Return")
        # Refused: the password field is emptied again.
        for _ in range(100):
            if "wrong 2" not in await console.texts():
                break
            await deferLater(0.1)
        await console.type(window, "wrong 3")
        await console.keys(window, "Return")
        texts = await console.wait_for_text("You can try again in")
        shown = next(t for t in texts if "You can try again in" in t)
        await deferLater(2.2)
        later = next(t for t in await console.texts() if "You can try again in" in t)
        await console.screenshot("console-5-login-rate-limited")
        seconds = [int(t.rsplit("in ", 1)[1].split()[0]) for t in (shown, later)]
        self.assertTrue(50 <= seconds[0] <= 60, shown)
        self.assertLess(seconds[1], seconds[0], "the wait counts down")

    async def test_an_unreachable_gateway(self):
        closed = []
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            closed.append(s.getsockname()[1])
            s.close()
        console = self.start(extra=("--raw-port", str(closed[0]), "--https-port", str(closed[1])))
        await self.log_in(console)
        texts = await console.wait_for_text("Cannot reach the gateway.")
        await console.screenshot("console-6-login-unreachable")
        message = next(t for t in texts if "Cannot reach" in t)
        self.assertIn("direct: connection refused", message)
        self.assertIn("HTTPS port: connection refused", message)

    async def test_a_certificate_that_does_not_verify_shows_its_fingerprint(self):
        # The console trusts another CA than the one that signed the gateway's certificate.
        self.server = xvfb.start(self)
        self.gateway = support.RunningGateway(self)
        console = console_driver.program(self, self.server, self.gateway, ca=session_support.operator_ca(self.gateway))
        window = await self.log_in(console)
        texts = await console.wait_for_text("does not verify")
        await console.screenshot("console-7-login-certificate")
        with open(self.gateway.config.certificate, "rb") as f:
            presented = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
        expected = login_window.fingerprint(presented)
        # Shown on two lines of 16 bytes.
        shown = next(t for t in texts if t.count(":") >= 30)
        self.assertEqual(shown.replace(" ", ":"), expected)
        await console.keys(window, "alt+f")
        self.assertEqual(await console.clipboard(), expected)
        self.assertNotIn("Connected", " ".join(texts))


    async def test_an_account_with_an_authenticator(self):
        console = self.start()
        secret = self.gateway.enrol_totp("alice")
        window = await self.log_in(console)
        await console.wait_for_text("This account also needs a code")
        # The code's row appeared, with the focus.
        await console.type(window, "000000" if self.current_code(secret) != "000000" else "111111")
        await console.keys(window, "Return")
        await console.wait_for_text("Wrong authenticator code.")
        await console.screenshot("console-4b-login-authenticator")
        await console.type(window, self.current_code(secret))
        await console.keys(window, "Return")
        await console.window(TITLE)
        await console.wait_for_text("Connected to 127.0.0.1 (direct) as Alice Agostini")

    def current_code(self, secret: bytes) -> str:
        return totp.code_at(secret, totp.step_at(time.time()))

    async def test_a_password_change_the_administrator_requires(self):
        console = self.start()
        self.gateway.change_operator("alice", must_change_password=True)
        window = await self.log_in(console)
        await console.wait_for_text("Your administrator requires a new password")
        new = "a much better passphrase"
        # The new password's rows appeared, the focus in the first.
        await console.type(window, new)
        await console.keys(window, "Tab")
        await console.type(window, new[:-1])
        await console.keys(window, "Return")
        await console.wait_for_text("The two new passwords differ. Type the same one twice.")
        await console.type(window, new[-1])
        await console.screenshot("console-4c-login-new-password")
        await console.keys(window, "Return")
        await console.window(TITLE)
        connection = records.open_database(os.path.join(self.gateway.config.state_dir, "ponte.sqlite3"))
        self.addCleanup(connection.close)
        alice = records.get_operator(connection.cursor(), "alice")
        self.assertFalse(alice.must_change_password)
        self.assertTrue(passwords.verify_password(alice.password_hash, new))

    async def test_the_way_through_is_shown(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        s.close()
        console = self.start(extra=("--raw-port", str(closed)))
        await self.log_in(console)
        await console.window(TITLE)
        await console.wait_for_text("Connected to 127.0.0.1 (HTTPS port) as Alice Agostini")

    async def test_an_idle_desk_stays_connected(self):
        console = self.start(extra=("--keepalive", "0.5"), control_idle_timeout=3)
        await self.log_in(console)
        await console.window(TITLE)
        await deferLater(7)
        texts = await console.texts()
        self.assertIn("Connected to 127.0.0.1 (direct) as Alice Agostini, Test Org.", texts)

    async def test_losing_the_gateway_is_said(self):
        # Without signs of life, the gateway drops the desk after its idle timeout.
        console = self.start(extra=("--keepalive", "600"), control_idle_timeout=3)
        await self.log_in(console)
        await console.window(TITLE)
        await console.wait_for_text("The connection to the gateway was lost.")
        await console.screenshot("console-14-connection-lost")
        texts = await console.texts()
        self.assertIn("Disconnected from the gateway.", texts)


class SettingsTests(unittest.TestCase):
    def test_saved_and_read_back_without_a_password_field(self):
        path = os.path.join(os.path.abspath(self.mktemp()), "ponte", "console.json")
        wanted = settings.ConsoleSettings(gateway="support.example.org", raw_port=4434, ca="/etc/ponte/ca.crt",
                                          username="alice")
        settings.save(wanted, path)
        self.assertEqual(settings.load(path), wanted)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertNotIn("password", {f.name for f in attrs.fields(settings.ConsoleSettings)})

    def test_a_damaged_file_gives_defaults_value_by_value(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"gateway": "gw.example.org", "raw_port": "many", "https_port": 70000, "unknown": 1}, f)
        self.assertEqual(settings.load(path), settings.ConsoleSettings(gateway="gw.example.org"))
        with open(path, "w", encoding="utf-8") as f:
            f.write("{not json")
        self.assertEqual(settings.load(path), settings.ConsoleSettings())
        self.assertEqual(settings.load(path + ".missing"), settings.ConsoleSettings())

    def test_the_place_follows_xdg(self):
        self.assertEqual(settings.default_path({"XDG_CONFIG_HOME": "/x"}), "/x/ponte/console.json")


class DeskTests(_ConsoleTest):
    async def logged_in(self, **gateway_options):
        console = self.start(**gateway_options)
        await self.log_in(console)
        return console, await console.window(TITLE)

    async def join(self, code: str):
        """A customer's agent core looks the code up and joins."""
        connection = await self.gateway.agent(self)
        routing = code[:4]
        await connection.callRemote(commands.Lookup, routing=routing)
        agent_ui = AgentUI()
        agent = AgentSession(reactor, agent_ui, Platform(os.path.abspath(self.mktemp())), code,
                             session_support.operator_ca(self.gateway))
        joined = defer.ensureDeferred(agent.join(connection, routing))
        self.addCleanup(lambda: agent.close() or agent.ended)
        return agent, agent_ui, joined

    async def test_a_customer_joins_and_is_picked_up(self):
        console, window = await self.logged_in()
        shown = await self.new_code(console, window)
        self.assertRegex(shown, CODE)
        texts = await console.wait_for_text("waiting for customer")
        await console.screenshot("console-8-new-code")
        self.assertIn(shown, texts, "the code is shown large")

        agent, agent_ui, joined = await self.join(shown.replace("-", ""))
        await console.window(WAITING)
        texts = await console.wait_for_text("A customer is waiting on code")
        self.assertTrue(any(t.startswith(shown) and "customer waiting" in t for t in texts), texts)
        await console.screenshot("console-9-customer-waiting")

        await console.keys(window, "alt+p")
        await joined
        await agent_ui.next("verified")
        session = await console.window(f"customer on code {shown}")
        await console.wait_for_text("Verified")
        await console.window(TITLE)  # no one waiting any more: no count in the title
        await console.wait_for_text(f"{shown} | in session")
        await console.screenshot("console-10-session-window")
        await console.xdotool("windowraise", window)
        await console.screenshot("console-10b-desk-in-session")

        # The customer ends: the code's row says so.
        agent.end("customer ended")
        await console.wait_for_text(f"{shown} | ended")
        await console.screenshot("console-11-desk-session-ended")
        await console.xdotool("windowraise", session)
        await console.screenshot("console-11b-session-window-ended")

    async def test_closing_the_console_ends_the_session(self):
        console, window = await self.logged_in()
        shown = await self.new_code(console, window)
        agent, agent_ui, joined = await self.join(shown.replace("-", ""))
        await console.wait_for_text("A customer is waiting on code")
        # Nothing selected: Alt+P picks up whoever has waited longest.
        await console.keys(window, "alt+p")
        await agent_ui.next("verified")
        console.process.signalProcess("TERM")
        self.assertEqual(await console.exit.ended, 0)
        (reason,) = await agent_ui.next("ended")
        self.assertIn("closed the console", reason)

    async def test_an_expired_code_is_shown_as_expired(self):
        console, window = await self.logged_in(code_validity=5)
        shown = await self.new_code(console, window)
        texts = await console.wait_for_text("expired", timeout=10)
        self.assertTrue(any(t.startswith(shown) and "expired" in t for t in texts), texts)
        await console.screenshot("console-12-expired")
        # An expired code can be removed from the list.
        await console.keys(window, "alt+r")
        await deferLater(0.5)
        self.assertFalse(any(t.startswith(shown) for t in await console.texts()))

    async def test_cancelling_a_code(self):
        console, window = await self.logged_in()
        first = await self.new_code(console, window)
        await console.keys(window, "alt+n")
        await console.wait_for_text("waiting for customer")
        second = await self._second_code(console, first)
        # The newest code is selected: Alt+A cancels it.
        await console.keys(window, "alt+a")
        await deferLater(0.5)
        texts = await console.texts()
        await console.screenshot("console-13-cancelled")
        self.assertFalse(any(t.startswith(second) for t in texts), texts)
        self.assertTrue(any(t.startswith(first) for t in texts), texts)
        agent = await self.gateway.agent(self)
        with self.assertRaises(commands.CodeCancelled):
            await agent.callRemote(commands.Lookup, routing=second[:4])

    async def _second_code(self, console, first: str) -> str:
        for _ in range(50):
            rows = [t for t in await console.texts() if " | waiting for customer" in t and not t.startswith(first)]
            if rows:
                return rows[0].split(" | ")[0]
            await deferLater(0.1)
        self.fail("no second code")


class TeamQueueTests(_ConsoleTest):
    """Customers on team codes in a teammate's console: the queue, and picking them up."""

    join = DeskTests.join
    TEAM = (("alice", "Alice Agostini", False, "Helpdesk"), ("bob", "Bob Berg", False, "Helpdesk"))

    async def test_customers_already_waiting_are_in_the_queue_at_login(self):
        self.server = xvfb.start(self)
        self.gateway = support.RunningGateway(self, operators=self.TEAM)
        alice = await session_support.logged_in_desk(self, self.gateway, "alice")
        live = await alice.new_code(team=True)
        _, _, joined = await self.join(live.code())
        # Nobody picks the customer up: their join fails when the test closes them.
        joined.addErrback(lambda failure: failure.trap(client.LegClosed))
        console = console_driver.program(self, self.server, self.gateway)
        await self.log_in(console, username="bob")
        texts = await console.wait_for_text("team (Alice Agostini)")
        self.assertTrue(any(t.startswith(f"{live.routing}-") for t in texts), texts)

    async def test_a_teammate_picks_up_with_the_code_the_customer_reads_out(self):
        console = self.start(operators=self.TEAM)
        window = await self.log_in(console, username="bob")
        await console.window("^Ponte console .*Bob Berg$")
        await console.wait_for_text("New team session")
        alice_events = []
        alice = await session_support.logged_in_desk(self, self.gateway, "alice")
        alice._events = lambda command, arguments: alice_events.append((command, arguments))
        live = await alice.new_code(team=True)
        self.assertEqual(live.team, "Helpdesk")
        agent, agent_ui, joined = await self.join(live.code())
        texts = await console.wait_for_text("A customer is waiting on team code")
        row = next(t for t in texts if t.startswith(f"{live.routing}-"))
        self.assertIn("team (Alice Agostini)", row)
        await console.screenshot("console-9b-team-queue")
        await console.keys(window, "alt+p")
        prompt = await console.window(f"^Pick up code {live.routing}$")
        await console.type(prompt, "x")
        await console.keys(prompt, "Return")
        await console.wait_for_text("That is not it")
        await console.keys(prompt, "BackSpace")
        await console.type(prompt, live.secret.lower())
        await console.screenshot("console-9c-team-pick-up")
        await console.keys(prompt, "Return")
        await joined
        await agent_ui.next("verified")
        await console.window(f"customer on code {live.display()}")
        # Alice's desk heard who took it.
        for _ in range(50):
            taken = [a for c, a in alice_events if c is commands.CustomerTaken]
            if taken:
                break
            await deferLater(0.1)
        self.assertEqual([(a["routing"], a["by"]) for a in taken], [(live.routing, "Bob Berg")])


class RecordedSessionTests(_ConsoleTest):
    """A session recorded by the console program, replayed and exported; its transcript stored."""

    join = DeskTests.join

    async def test_recording_the_organisation_requires(self):
        console = self.start()
        self.gateway.change_operator("alice", must_record=True)
        await self.log_in(console)
        window = await console.window(TITLE)
        await console.wait_for_text("Every session is recorded (your organisation requires it).")
        shown = await self.new_code(console, window)
        agent, agent_ui, joined = await self.join(shown.replace("-", ""))
        await console.window(WAITING)
        await console.keys(window, "alt+p")
        await agent_ui.next("verified")
        session_window = await console.window(f"customer on code {shown}")
        await console.wait_for_text("● Recording (required)")
        # Neither Alt+D nor the button stops it.
        await console.keys(session_window, "alt+d")
        await deferLater(0.5)
        await console.wait_for_text("● Recording (required)")
        await console.screenshot("console-10c-recording-required")
        directory = os.path.join(console.home, "Videos", "Ponte")
        self.assertEqual(len(os.listdir(directory)), 1)

    async def test_recording_replay_export_and_transcript(self):
        import json

        import av

        from console.export import export
        from console.recording import ChatRecord, FrameRecord, Recording
        from gateway import records
        from wire import session_commands as sc

        directory = os.path.abspath(self.mktemp())
        console = self.start(extra=("--record-directory", directory))
        await self.log_in(console)
        window = await console.window(TITLE)
        shown = await self.new_code(console, window)
        agent, agent_ui, joined = await self.join(shown.replace("-", ""))
        await console.window(WAITING)
        await console.keys(window, "alt+p")
        await joined
        await agent_ui.next("verified")
        session_window = await console.window(f"customer on code {shown}")
        await console.wait_for_text("■ Stop recording")
        # The operator asks for everything (Alt+A); the customer's double allows; frames flow.
        await console.keys(session_window, "alt+s", "alt+a")
        await agent_ui.next("grants_changed", lambda a: sc.VIEW in a[0])
        await support.wait_for(lambda: agent.platform.screen.grabs >= 2)
        await agent.send_chat("the printer is offline")
        await console.keys(session_window, "alt+n")
        await console.type(session_window, "Printer driver reinstalled.")
        agent.end("customer ended")
        await console.wait_for_text(f"{shown} | ended")

        # The recording: frames and the chat, replayable (from the desk) and exportable.
        (name,) = os.listdir(directory)
        path = os.path.join(directory, name)
        await console.keys(window, "alt+y")
        dialog = await console.window("Replay a recording")
        await e2e_support.focus_in(self.server, "ponte-console", dialog, "*filedialog*ent*")
        await console.type(dialog, path)
        await console.keys(dialog, "Return")
        await console.window(name)  # "Replay — NAME"
        await console.screenshot("console-15-replay")
        records_read = list(Recording.read(path))
        self.assertTrue(any(isinstance(r, FrameRecord) for r in records_read))
        self.assertIn("the printer is offline", [r.message.text for r in records_read if isinstance(r, ChatRecord)])
        video = os.path.abspath(self.mktemp()) + ".mp4"
        result = await threads.deferToThread(export, path, video)
        with av.open(video) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            self.assertEqual((stream.width, stream.height), (result.width, result.height))
        self.assertEqual(frames, result.frames)
        self.assertEqual((result.width, result.height), (64, 32))

        # The transcript, stored sealed with the session record.
        session = self.gateway.switchboard.router.get(shown.replace("-", "")[:4])
        row = None
        for _ in range(100):
            row = await self.gateway.service.store.get_transcript(session.session_id)
            if row:
                break
            await deferLater(0.1)
        key = records.TranscriptKey.load(os.path.join(self.gateway.config.state_dir, "transcripts.key"))
        document = json.loads(key.open(session.session_id, row["nonce"], row["sealed"], row["key_id"]))
        self.assertIn("the printer is offline", [m["text"] for m in document["chat"]])
        self.assertIn("Printer driver reinstalled.", document["notes"])
