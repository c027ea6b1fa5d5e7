"""
The console's session window on a private Xvfb.  The test process runs a
gateway and the customer's agent core (with doubles for the screen, input,
system information and clipboard, and the real pty shell); the console
runs in a subprocess of its own (this module run as a program, see
L{console_main}): Tk, the bridge and the reactor thread, logged in with
L{console.desk.Desk}, picking the customer up with a L{SessionWindow}.

The test drives the window with xdotool (its keyboard accelerators, the
mouse on the screen canvas) and checks what reaches the agent; the console
program answers questions about its widgets on stdin/stdout.  Screenshots
of every tab go to $PONTE_SCREENSHOTS (the test's directory by default).
"""

import hashlib
import json
import os
import sys
import time

from PIL import Image, ImageChops, ImageDraw, ImageStat
from twisted.internet import defer, protocol, reactor, threads
from twisted.trial import unittest
from zope.interface import implementer

from agent.interfaces import IScreenSource, ISystemInfoSource
from agent.screen import FrameDiffer
from agent.session import AgentSession
from console import keys
from console.screen_canvas import RESAMPLE, ScreenDecoder, fit
from tests import session_support, support, xvfb
from tests.agent_driver import SCREENSHOTS, _grab, deferLater
from tests.session_doubles import AgentUI, Platform
from wire import commands, sysinfo, tiles
from wire import session_commands as sc
from wire.screen import Cursor, Frame, Monitor

WIDTH, HEIGHT = 1200, 760
SECOND = (640, 480)
GEOMETRY = "1000x700+0+0"


# -- unit tests of the parts without a display ---------------------------------------------------


class KeyTests(unittest.TestCase):
    def test_remote_keys(self):
        """Named keys become pynput names; characters go as themselves, Ctrl combinations as the key."""
        for keysym, char, expected in [
            ("Control_L", "", "ctrl_l"), ("Shift_L", "", "shift"), ("Return", "\r", "enter"),
            ("BackSpace", "\x08", "backspace"), ("Escape", "\x1b", "esc"), ("F11", "", "f11"),
            ("Super_L", "", "cmd"), ("Alt_L", "", "alt_l"), ("Prior", "", "page_up"), ("a", "a", "a"),
            ("A", "A", "A"), ("udiaeresis", "ü", "ü"), ("EuroSign", "€", "€"),
            ("c", "\x03", "c"),  # Ctrl+C: the key; Ctrl goes as a key of its own
            ("space", " ", "space"), ("XF86AudioMute", "", None),
        ]:
            self.assertEqual(keys.remote_key(keysym, char), expected, keysym)

    def test_combinations_press_in_order_and_release_in_reverse(self):
        ctrl_alt_del = keys.COMBINATIONS[0]
        self.assertEqual(ctrl_alt_del.events(), [("ctrl_l", True), ("alt_l", True), ("delete", True),
                                                 ("delete", False), ("alt_l", False), ("ctrl_l", False)])
        for combination in keys.COMBINATIONS:
            for key, _ in combination.events():
                self.assertTrue(key in keys.PYNPUT_NAMES.values(), key)

    def test_terminal_bytes(self):
        for keysym, char, state, expected in [
            ("a", "a", 0, b"a"), ("Return", "\r", 0, b"\r"), ("BackSpace", "\x08", 0, b"\x7f"),
            ("c", "\x03", keys.CONTROL, b"\x03"), ("d", "\x04", keys.CONTROL, b"\x04"),
            ("bracketleft", "\x1b", keys.CONTROL, b"\x1b"), ("space", " ", keys.CONTROL, b"\x00"),
            ("Up", "", 0, b"\x1b[A"), ("Left", "", keys.CONTROL, b"\x1b[1;5D"), ("Delete", "\x7f", 0, b"\x1b[3~"),
            ("F1", "", 0, b"\x1bOP"), ("F12", "", 0, b"\x1b[24~"), ("b", "b", keys.ALT, b"\x1bb"),
            ("udiaeresis", "ü", 0, "ü".encode()), ("Shift_L", "", 0, None), ("Control_L", "", keys.CONTROL, None),
        ]:
            self.assertEqual(keys.terminal_bytes(keysym, char, state), expected, keysym)
        self.assertEqual(keys.terminal_bytes("Up", "", 0, application_cursor=True), b"\x1bOA")


class DecoderTests(unittest.TestCase):
    """The decoding thread hands over the changed region, scaled exactly like the whole picture."""

    def _decode(self, frames, area):
        updates = []
        decoder = ScreenDecoder(updates.append)
        self.addCleanup(decoder.stop)
        decoder.show_in(1, area)
        for frame in frames:
            decoder.submit(frame)
            for _ in range(500):
                if updates and sum(u.frames for u in updates) == frames.index(frame) + 1:
                    break
                time.sleep(0.01)
        return decoder, updates

    def test_fit(self):
        self.assertEqual(fit((1920, 1080), (960, 1000)), (960, 540))
        self.assertEqual(fit((800, 600), (1600, 1200)), (800, 600))  # never enlarged
        self.assertEqual(fit((800, 600), None), (800, 600))

    def test_regions_match_the_whole_picture_scaled(self):
        differ = FrameDiffer()
        first, second = picture(0), picture(3)
        frames = [differ.frame(0, WIDTH, HEIGHT, p.tobytes("raw", "BGRX")) for p in (first, second)]
        decoder, updates = self._decode(frames, (900, 600))
        self.assertEqual(sum(u.frames for u in updates), 2)
        shown = fit((WIDTH, HEIGHT), (900, 600))
        self.assertEqual(updates[0].display_size, shown)
        self.assertEqual(updates[0].image.size, shown)
        # The second is a part only; pasted over the first it gives the whole second picture scaled.
        self.assertLess(updates[-1].image.size[0] * updates[-1].image.size[1], shown[0] * shown[1])
        canvas = updates[0].image.copy()
        for update in updates[1:]:
            canvas.paste(update.image, update.at)
        difference = ImageChops.difference(canvas, second.resize(shown, RESAMPLE))
        # Rounding of the filter's weights: at most 2 levels on a pixel.
        self.assertLessEqual(max(ImageStat.Stat(difference).extrema[c][1] for c in range(3)), 2)

    def test_a_bad_frame_still_counts(self):
        bad = Frame(0, 10, 10, (tiles.Tile(0, 0, 20, 20, "raw", b""),))
        decoder, updates = self._decode([bad], None)
        self.assertEqual(updates[-1].frames, 1)
        self.assertIsNone(updates[-1].image)
        self.assertIn("outside", updates[-1].problem)


# -- the customer's side: pictures, screen and system information doubles ------------------------


def picture(step: int = 0, size=(WIDTH, HEIGHT), tint=(40, 90, 160)) -> Image.Image:
    """A desktop with flat colours and text; C{step} scrolls the text and moves a square."""
    image = Image.new("RGB", size, tint)
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 80, 700, 500), fill="white", outline="black")
    draw.rectangle((100, 80, 700, 110), fill=(30, 30, 30))
    draw.text((110, 88), "Customer's window: printer settings", fill="white")
    for i in range(20):
        draw.text((120, 130 + i * 18), f"line {i + step:3d}: the quick brown fox jumps over the lazy dog", fill="black")
    colours = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
               (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255)]
    for i, colour in enumerate(colours):
        x, y = 780 + (i % 4) * 90, 100 + (i // 4) * 90
        if x + 80 < size[0] and y + 80 < size[1]:
            draw.rectangle((x, y, x + 80, y + 80), fill=colour)
    x = 50 + step * 12
    draw.rectangle((x, 600, x + 60, 660), fill=(250, 200, 0), outline="black")
    return image


@implementer(IScreenSource)
class PictureScreen:
    """The customer's two monitors; a frame goes out when a new picture is shown and the agent has credit."""

    def __init__(self):
        self.pictures = {0: picture(0), 1: picture(0, SECOND, (120, 40, 40))}
        self.version = {0: 1, 1: 1}
        self.sent: dict[int, int] = {}
        self.differ = FrameDiffer()
        self.waiting = None
        self.requests = []
        self.frames_sent = 0
        self.pointer = Cursor(300, 200, True, "arrow")
        self.last_monitor = None

    def monitors(self):
        return [Monitor(0, 0, 0, WIDTH, HEIGHT, True), Monitor(1, WIDTH, 0, *SECOND, False)]

    def next_frame(self, monitor):
        self.requests.append(monitor)
        if self.sent.get(monitor) != self.version[monitor] or self.last_monitor != monitor:
            return defer.succeed(self._frame(monitor))
        d = defer.Deferred()
        self.waiting = (monitor, d)
        return d

    def _frame(self, monitor):
        image = self.pictures[monitor]
        self.sent[monitor] = self.version[monitor]
        self.last_monitor = monitor
        self.frames_sent += 1
        return self.differ.frame(monitor, *image.size, image.tobytes("raw", "BGRX"))

    def show(self, monitor: int, image: Image.Image) -> None:
        """A new picture on C{monitor}."""
        self.pictures[monitor] = image
        self.version[monitor] += 1
        if self.waiting is not None and self.waiting[0] == monitor:
            _, d = self.waiting
            self.waiting = None
            d.callback(self._frame(monitor))

    def cursor(self, monitor):
        return self.pointer

    def windows(self):
        return []

    def share_window(self, window_id):
        pass

    def stop(self):
        self.sent.clear()
        self.differ.reset()
        self.last_monitor = None
        if self.waiting is not None:
            _, d = self.waiting
            self.waiting = None
            d.callback(None)


@implementer(ISystemInfoSource)
class RichSystemInfo:
    def collect(self):
        return defer.succeed(sysinfo.SystemInfo(
            os="Debian GNU/Linux", os_version="12 (bookworm)", hostname="reception-pc", uptime=3 * 86400 + 4 * 3600 + 720,
            cpu=sysinfo.Cpu("Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz", 8, 12.5),
            memory=sysinfo.Memory(16 * 1024**3, 9 * 1024**3, 2 * 1024**3, 128 * 1024**2),
            disks=(sysinfo.Disk("/", "/dev/nvme0n1p2", "ext4", 500 * 1024**3, 210 * 1024**3),
                   sysinfo.Disk("/boot/efi", "/dev/nvme0n1p1", "vfat", 512 * 1024**2, 6 * 1024**2)),
            interfaces=(sysinfo.NetworkInterface("lo", ("127.0.0.1", "::1"), True),
                        sysinfo.NetworkInterface("wlp2s0", ("192.168.1.23", "fe80::1c2:3ff:fe4a:5b6c"), True),
                        sysinfo.NetworkInterface("enp0s31f6", (), False)),
            users=(sysinfo.User("maria", "tty2", time.time() - 7200),),
            processes=tuple(sysinfo.Process(100 + i, name, "maria" if i % 3 else "root", cpu, mem * 1024**2)
                            for i, (name, cpu, mem) in enumerate([
                                ("firefox-esr", 23.5, 812), ("Xorg", 4.2, 160), ("cupsd", 0.1, 12),
                                ("systemd", 0.0, 11), ("libreoffice", 1.3, 410), ("pulseaudio", 0.7, 25)])),
            packages=tuple(sysinfo.Package(n, v) for n, v in [("cups", "2.4.2-3"), ("firefox-esr", "115.9.1esr-1"),
                                                               ("hplip", "3.22.10"), ("libc6", "2.36-9")]),
            log_lines=("Mar 14 09:12:01 reception-pc cupsd[812]: printer HP_LaserJet stopped: paper jam",
                       "Mar 14 09:12:05 reception-pc kernel: usb 1-2: USB disconnect, device number 7"),
        ))


# -- the console program ------------------------------------------------------------------------


def console_main(argv) -> None:
    """
    The console side: log in as alice, make a code (printed as C{code
    ROUTING CODE}), open a L{SessionWindow} at once, pick the customer up
    when they wait, and answer the test's questions on stdin.
    """
    import tkinter as tk

    from console.desk import Desk
    from console.session_window import SessionWindow
    from wire import client
    from wire.tkbridge import Bridge

    port, ca_path, receive_directory = int(argv[0]), argv[1], argv[2]
    with open(ca_path, "rb") as f:
        ca = f.read()
    root = tk.Tk()
    root.withdraw()
    bridge = Bridge(root, reactor)
    bridge.start()
    held = {}

    def say(kind, value=None):
        sys.stdout.write(f"{kind} {json.dumps(value)}\n")
        sys.stdout.flush()

    async def log_in():
        async def connect(role, on_event):
            connection = await client.connect(reactor, "127.0.0.1", port, ca, on_event)
            await connection.hello(role)
            return connection

        desk = Desk(reactor, connect, receive_directory)
        await desk.login("alice", support.PASSWORD)
        return desk, await desk.new_code()

    def logged_in(result):
        desk, live = result
        window = SessionWindow(root, bridge, f"Customer {live.display()}")
        window.geometry(GEOMETRY)
        held.update(desk=desk, live=live, window=window)
        say("code", [live.routing, live.code()])
        root.after(20, wait_for_customer)

    def wait_for_customer():
        desk, live, window = held["desk"], held["live"], held["window"]
        if live.routing not in desk.waiting:
            root.after(20, wait_for_customer)
            return

        def attached(session):
            window.attach(session)
            say("picked")

        bridge.run(desk.pick_up, live.routing, window.ui, done=attached, failed=lambda e: say("error", str(e)))

    pending = b""

    def command(*_):
        nonlocal pending
        chunk = os.read(0, 4096)
        if not chunk:
            root.quit()
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            words = line.decode("utf-8").split()
            try:
                say("reply", _answer(held["window"], words))
            except Exception as e:
                say("reply", {"error": repr(e)})

    root.tk.createfilehandler(sys.stdin, tk.READABLE, command)
    bridge.run(log_in, done=logged_in, failed=lambda e: say("error", str(e)))
    try:
        root.mainloop()
    finally:
        bridge.stop()


def _answer(window, words):
    """The console program's answer to one question of the test."""
    what = words[0]
    if what == "tab":
        window.tabs.select(int(words[1]))
    elif what == "subtab":
        window.system.tabs.select(int(words[1]))
    elif what == "monitor":
        window.monitor_choice.set(window.monitor_box.cget("values")[int(words[1])])
        window._monitor_chosen()
    elif what == "cancel":
        for row in window.transfer_rows.values():
            if row["transfer"].outcome is None:
                row["cancel"].invoke()
    elif what == "geometry":
        window.geometry(words[1])
        window.update()
    elif what == "clipboard":
        window.clipboard_clear()
        window.clipboard_append(" ".join(words[1:]))
    elif what == "colours":
        return window.terminal.tag_colours(int(words[1]), int(words[2]))
    window.update_idletasks()
    return _state(window)


def _state(window):
    screen, canvas, terminal, system = window.screen, window.screen.canvas, window.terminal, window.system
    shown = screen.update_shown
    picture_at = None
    if shown is not None:
        x, y = canvas.coords(screen.image_item)
        picture_at = [canvas.winfo_rootx() + round(x - canvas.canvasx(0)), canvas.winfo_rooty() + round(y - canvas.canvasy(0))]
    pointer = canvas.coords(screen.pointer)[:2]

    def mapped(label):
        return label.cget("text") if label.winfo_ismapped() else ""

    return {
        "badge": window.badge.cget("text"),
        "alarm": mapped(window.alarm_banner),
        "mode": window.mode.cget("text"),
        "controlling": window.is_controlling(),
        "grants": {s: label.cget("text") for s, label in window.grant_labels.items()},
        "answer": window.answer_label.cget("text"),
        "status": window.status.cget("text"),
        "chat": window.chat.get("1.0", "end-1c"),
        "frames_drawn": screen.frames_drawn,
        "screen": shown and {"source": shown.source_size, "display": shown.display_size, "at": picture_at,
                             "monitor": shown.monitor},
        "pointer": [canvas.winfo_rootx() + round(pointer[0] - canvas.canvasx(0)),
                    canvas.winfo_rooty() + round(pointer[1] - canvas.canvasy(0))] if pointer else None,
        "pointer_shown": canvas.itemcget(screen.pointer, "state") == "normal",
        "monitors": list(window.monitor_box.cget("values")),
        "terminal": {"lines": terminal.display(), "running": terminal.running, "status": terminal.status.cget("text"),
                     "size": [terminal.screen.columns, terminal.screen.lines],
                     "at": [terminal.text.winfo_rootx(), terminal.text.winfo_rooty(), terminal.text.winfo_width(),
                            terminal.text.winfo_height()]},
        "transfers": [{"name": r["transfer"].name, "direction": r["transfer"].direction,
                       "outcome": r["transfer"].outcome, "done": r["transfer"].done,
                       "state": r["state"].cget("text"), "sha256": r["sha256"].get(), "path": r["path"].get()}
                      for r in window.transfer_rows.values()],
        "system": {"status": system.status.cget("text"), "overview": system.overview.get("1.0", "end-1c"),
                   "processes": system.processes.rows(), "disks": system.disks.rows(),
                   "network": system.network.rows(), "packages": system.packages.rows(),
                   "logs": system.logs.get("1.0", "end-1c")},
        "notes": window.notes(),
        "rating": mapped(window.rating_banner),
        "ended": mapped(window.ended_banner),
        "tab": window.tabs.index("current"),
        "focus": str(window.focus_get()),
        "clipboard": _clipboard(window),
    }


def _clipboard(window) -> str | None:
    import tkinter

    try:
        return window.clipboard_get()
    except tkinter.TclError:
        return None


class ConsoleProgram(protocol.ProcessProtocol):
    """The console program: what it said, and its answers to questions."""

    def __init__(self):
        self.lines: list[tuple[str, object]] = []
        self.errors = b""
        self._buffer = b""
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            kind, _, rest = line.decode("utf-8").partition(" ")
            self.lines.append((kind, json.loads(rest)))

    def errReceived(self, data):
        self.errors += data

    def processEnded(self, reason):
        self.ended.callback(None)

    async def said(self, kind: str, after: int = 0, timeout: float = 20.0):
        """The first thing of C{kind} said after line C{after}."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for k, value in self.lines[after:]:
                if k == kind:
                    return value
                if k == "error":
                    raise AssertionError(f"the console failed: {value}")
            if self.ended.called:
                break
            await deferLater(0.02)
        raise AssertionError(f"the console did not say {kind!r}; it said {self.lines[-5:]}, {self.errors[-3000:]!r}")

    async def ask(self, *words) -> dict:
        """The console's state after C{words} (a question, see L{_answer})."""
        after = len(self.lines)
        self.transport.write((" ".join(str(w) for w in words) + "\n").encode())
        answer = await self.said("reply", after)
        if isinstance(answer, dict) and "error" in answer:
            raise AssertionError(f"the console could not answer {words}: {answer['error']}")
        return answer

    async def until(self, test, timeout: float = 10.0, what: str = "") -> dict:
        """The console's state once C{test(state)} holds."""
        deadline = time.monotonic() + timeout
        while True:
            state = await self.ask("state")
            if test(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"the window never showed {what or test}; it shows {_short(state)}")
            await deferLater(0.05)

    def kill(self):
        if not self.ended.called:
            self.transport.signalProcess("KILL")
        return self.ended


def _short(state: dict) -> dict:
    return {k: v for k, v in state.items() if k not in ("system",)}


class Harness:
    """One session: the gateway and agent core here, the console in its program, on one Xvfb."""

    def __init__(self, testcase):
        self.testcase = testcase
        self.shots = []

    async def start(self, allow=None, picked=None, wrong_code=False, before_join=None):
        testcase = self.testcase
        self.server = xvfb.start(testcase)
        self.gateway = support.RunningGateway(testcase)
        home = os.path.abspath(testcase.mktemp())
        os.makedirs(home)
        ca = os.path.join(home, "ca.crt")
        with open(ca, "wb") as f:
            f.write(self.gateway.ca)
        self.console_files = os.path.join(home, "console-received")
        os.makedirs(self.console_files)
        self.console = ConsoleProgram()
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        reactor.spawnProcess(
            self.console, sys.executable,
            [sys.executable, "-m", "tests.test_console_session_window", str(self.gateway.port), ca, self.console_files],
            env={**self.server.environment(), "PYTHONPATH": here, "HOME": home}, path=here,
        )
        testcase.addCleanup(self.console.kill)
        routing, code = await self.console.said("code")
        self.window = (await self.xdotool("search", "--sync", "--onlyvisible", "--name", "Customer")).split()[0]
        if before_join is not None:
            await before_join(self)
        self.agent_ui = AgentUI(allow=allow, picked=picked)
        self.platform = Platform(os.path.join(home, "agent-received"))
        os.makedirs(self.platform.receive_directory)
        self.screen = self.platform.screen = PictureScreen()
        self.platform.system_info = RichSystemInfo()
        connection = await self.gateway.agent(testcase)
        await connection.callRemote(commands.Lookup, routing=routing)
        typed = code[:-1] + ("2" if code[-1] != "2" else "3") if wrong_code else code
        self.agent = AgentSession(reactor, self.agent_ui, self.platform, typed, session_support.operator_ca(self.gateway))
        await self.agent.join(connection, routing)
        testcase.addCleanup(lambda: self.agent.close() or self.agent.ended)
        if not wrong_code:
            await self.agent_ui.next("verified")
            await self.console.until(lambda s: s["badge"].startswith("✔"), what="verified")
        return self

    def xdotool(self, *arguments) -> defer.Deferred:
        return threads.deferToThread(xvfb.xdotool, self.server, *arguments)

    async def keys(self, *names) -> None:
        """Press keys (xdotool names) in the session window."""
        await self.xdotool("windowfocus", "--sync", self.window)
        for name in names:
            await self.xdotool("key", "--clearmodifiers", name)
            await deferLater(0.05)

    async def type(self, text: str) -> None:
        await self.xdotool("type", "--delay", "15", text)

    async def screenshot(self, name: str) -> Image.Image:
        directory = SCREENSHOTS or os.path.abspath(self.testcase.mktemp())
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"console-session-{name}.png")
        await deferLater(0.3)
        await threads.deferToThread(_grab, self.server.display, path)
        self.shots.append(path)
        return Image.open(path).convert("RGB")

    async def allow_everything(self) -> dict:
        """Alt+P, Alt+A: ask for everything; the customer's double allows what it allows."""
        await self.keys("alt+p", "alt+a")
        (scopes, everything, duration) = await self.agent_ui.next("ask_consent")
        self.testcase.assertTrue(everything)
        self.testcase.assertEqual(sorted(scopes), sorted(sc.SCOPES))
        return await self.console.until(lambda s: s["answer"].startswith("The customer allowed"), what="the answer")


def _granted(state, scope) -> bool:
    return state["grants"][scope].startswith("✔")


def _compare(testcase, shown: Image.Image, expected: Image.Image, mean_limit: float, what: str):
    """
    C{shown} (from a screenshot) is C{expected} within a mean difference per
    channel of C{mean_limit}, and no pixel more than 2 levels off.
    """
    testcase.assertEqual(shown.size, expected.size)
    difference = ImageChops.difference(shown, expected)
    mean = max(ImageStat.Stat(difference).mean)
    largest = max(e[1] for e in ImageStat.Stat(difference).extrema)
    testcase.assertLessEqual(mean, mean_limit, f"{what}: mean difference {mean:.2f}")
    testcase.assertLessEqual(largest, 2, f"{what}: a pixel differs by {largest}")
    return mean


class SessionWindowTests(unittest.TestCase):
    timeout = 120

    async def test_connecting_verified_chat_and_live_permissions(self):
        """
        "Connecting…" until the customer joins, then "Verified"; chat both
        ways with timestamps; Alt+P, Alt+A asks for everything; a grant the
        customer revokes shows as revoked at once.
        """

        async def before_join(harness):
            state = await harness.console.ask("state")
            self.assertEqual(state["badge"], "Connecting…")
            await harness.screenshot("01-connecting")

        harness = await Harness(self).start(before_join=before_join)
        console, agent_ui = harness.console, harness.agent_ui
        state = await console.ask("state")
        self.assertEqual(state["badge"], "✔ Verified: the code matches")
        self.assertEqual(state["mode"], "Not viewing")
        await harness.screenshot("02-verified")

        # Chat: Alt+C selects the tab with the cursor in the line.
        await harness.keys("alt+c")
        await harness.type("Hello, I am looking at it now")
        await harness.keys("Return")
        (message,) = await agent_ui.next("chat_received")
        self.assertEqual(message.text, "Hello, I am looking at it now")
        await harness.agent.send_chat("Thank you! The printer says paper jam.")
        state = await console.until(lambda s: "paper jam" in s["chat"], what="the customer's message")
        self.assertRegex(state["chat"], r"\d\d:\d\d:\d\d You: Hello, I am looking at it now")
        self.assertRegex(state["chat"], r"\d\d:\d\d:\d\d Customer: Thank you! The printer says paper jam.")
        await harness.screenshot("03-chat")

        # Permissions: everything asked in one question, everything allowed.
        state = await harness.allow_everything()
        state = await console.until(lambda s: all(_granted(s, scope) for scope in sc.SCOPES), what="every grant")
        self.assertEqual(state["tab"], 1)
        self.assertEqual(state["grants"][sc.CONTROL], "✔ Allowed")
        await harness.screenshot("04-permissions-granted")

        # The customer revokes control: the window shows it at once.
        revoked_at = time.monotonic()
        harness.agent.revoke(sc.CONTROL)
        state = await console.until(lambda s: not _granted(s, sc.CONTROL), timeout=2.0, what="control revoked")
        self.assertLess(time.monotonic() - revoked_at, 1.0)
        self.assertEqual(state["grants"][sc.CONTROL], "Not allowed")
        self.assertTrue(_granted(state, sc.VIEW))
        self.assertIn("control not allowed", state["mode"])
        await harness.screenshot("05-permissions-control-revoked")

        # Clipboard text both ways.
        await console.ask("clipboard", "sudo systemctl restart cups")
        await harness.keys("alt+b")
        await _wait(lambda: harness.platform.clipboard.texts, 5.0, "the clipboard at the customer's")
        self.assertEqual(harness.platform.clipboard.texts, ["sudo systemctl restart cups"])
        await harness.agent.send_clipboard("Error 0x80070005")
        await console.until(lambda s: "Customer's clipboard: Error 0x80070005" in s["chat"], what="their clipboard")
        self.assertEqual((await console.ask("state"))["clipboard"], "Error 0x80070005")

        # One scope asked alone.
        await harness.keys("alt+p")
        await harness.keys("shift+Tab", "space")  # from "Ask for everything" to the last Ask button (clipboard)
        (scopes, everything, duration) = await agent_ui.next("ask_consent", lambda a: not a[1])
        self.assertEqual((scopes, everything, duration), ([sc.CLIPBOARD], False, 0.0))

    async def test_screen_scaled_one_to_one_and_under_continuous_updates(self):
        """
        The customer's screen is drawn scaled to fit, then 1:1 (Alt+Z);
        continuous updates (scrolling text, a moving square) arrive in order
        with credit-based flow control and the last picture is shown; the
        pointer is drawn; another monitor can be chosen.
        """
        harness = await Harness(self).start()
        console, screen = harness.console, harness.screen
        await harness.allow_everything()
        state = await console.until(lambda s: s["frames_drawn"] >= 1 and s["screen"], what="the first frame")
        display = tuple(state["screen"]["display"])
        self.assertEqual(tuple(state["screen"]["source"]), (WIDTH, HEIGHT))
        self.assertLess(display[0], WIDTH)  # 1000×700 window: scaled down
        self.assertEqual(display, fit((WIDTH, HEIGHT), display))
        self.assertIn("View only", state["mode"])
        await harness.keys("alt+s")
        shot = await harness.screenshot("06-screen-fit")
        x, y = state["screen"]["at"]
        expected = screen.pictures[0].resize(display, RESAMPLE)
        # Stated error: the picture is the agent's picture scaled as Pillow
        # scales it (bilinear), every pixel within 2 levels per channel and
        # a mean difference of at most 0.5 (the pointer drawn over it aside).
        # Measured: identical after the first frame, 1 level at most after
        # 30 updates pasted as scaled regions.
        shown = shot.crop((x, y, x + display[0], y + display[1]))
        _compare(self, _without_pointer(shown, state, x, y), _without_pointer(expected, state, x, y), 0.5, "fit")
        pointer = state["pointer"]
        scale = display[0] / WIDTH
        self.assertTrue(state["pointer_shown"])
        self.assertLessEqual(abs(pointer[0] - (x + 300 * scale)), 1)
        self.assertLessEqual(abs(pointer[1] - (y + 200 * scale)), 1)

        # Continuous updates: each new picture goes out once the console
        # has drawn enough to give credit back; none is lost, in order.
        started = time.monotonic()
        for step in range(1, 31):
            screen.show(0, picture(step))
            await _wait(lambda: screen.sent.get(0) == screen.version[0], 10.0, "the agent to send the picture")
        drawn = await console.until(lambda s: s["frames_drawn"] >= screen.frames_sent, what="every frame drawn")
        elapsed = time.monotonic() - started
        self.assertEqual(drawn["frames_drawn"], screen.frames_sent)
        self.assertLess(elapsed, 20.0)
        # The agent waits with its next grab until it has credit: at most 2 ahead.
        self.assertLessEqual(len(screen.requests), screen.frames_sent + 2)
        shot = await harness.screenshot("07-screen-after-30-updates")
        shown = shot.crop((x, y, x + display[0], y + display[1]))
        expected = picture(30).resize(display, RESAMPLE)
        _compare(self, _without_pointer(shown, state, x, y), _without_pointer(expected, state, x, y), 0.5,
                 "after continuous updates")

        # 1:1 with scroll bars: the top left part of the picture, exact.
        await harness.keys("alt+z")
        state = await console.until(lambda s: tuple(s["screen"]["display"]) == (WIDTH, HEIGHT), what="1:1")
        shot = await harness.screenshot("08-screen-one-to-one")
        x, y = state["screen"]["at"]
        visible = shot.crop((x, y, x + 600, y + 500))
        expected = picture(30).crop((0, 0, 600, 500))
        expected.paste(visible.crop((300, 200, 313, 221)), (300, 200))  # the pointer
        self.assertIsNone(ImageChops.difference(visible, expected).getbbox(), "1:1 is exact")
        await harness.keys("alt+z")

        # The second monitor.
        self.assertEqual(len(state["monitors"]), 2)
        state = await console.ask("monitor", 1)
        # The agent's grab of the first monitor ends with its next change;
        # that frame, still of the first monitor, is not drawn.
        await _wait(lambda: screen.waiting is not None, 5.0, "the agent waiting for a change")
        screen.show(0, picture(31))
        state = await console.until(lambda s: s["screen"] and s["screen"]["monitor"] == 1, what="monitor 2")
        self.assertEqual(tuple(state["screen"]["source"]), SECOND)
        self.assertEqual(screen.requests[-1], 1)
        await harness.screenshot("09-screen-second-monitor")

        # The customer stops sharing: the canvas says so.
        harness.agent.revoke(sc.VIEW)
        state = await console.until(lambda s: s["screen"] is None, what="sharing stopped")
        self.assertEqual(state["mode"], "Not viewing")

    async def test_input_only_in_control_mode(self):
        """
        Nothing is sent while viewing; with control on (Alt+R) the pointer,
        buttons, wheel and keys reach the customer's input with the monitor's
        coordinates; F8 opens the key combinations; revoking control stops it.
        """
        harness = await Harness(self).start()
        console, events = harness.console, harness.platform.input.events
        await harness.allow_everything()
        await harness.keys("alt+s")
        state = await console.until(lambda s: s["screen"], what="the screen")
        x, y = state["screen"]["at"]
        sx, sy = state["screen"]["display"][0] / WIDTH, state["screen"]["display"][1] / HEIGHT

        def at(px, py):
            return str(round(x + (px + 0.5) * sx)), str(round(y + (py + 0.5) * sy))

        # View only: nothing goes out.
        await harness.xdotool("mousemove", *at(400, 300))
        await harness.xdotool("click", "1")
        await harness.keys("x", "Return")
        await deferLater(0.5)
        self.assertEqual(events, [])
        self.assertFalse(state["controlling"])
        await harness.screenshot("10-view-only")

        # Control on.
        await harness.keys("alt+r")
        state = await console.until(lambda s: s["controlling"], what="controlling")
        self.assertIn("Controlling", state["mode"])
        await harness.xdotool("mousemove", *at(600, 380))
        await _wait(lambda: any(e.kind == "move" for e in events), 5.0, "a move")
        move = [e for e in events if e.kind == "move"][-1]
        self.assertLessEqual(abs(move.x - 600), 1)
        self.assertLessEqual(abs(move.y - 380), 1)
        await harness.xdotool("click", "1")
        await _wait(lambda: any(e.kind == "button" and e.pressed is False for e in events), 5.0, "a click")
        press, release = [e for e in events if e.kind == "button"]
        self.assertEqual((press.button, press.pressed, release.pressed), ("left", True, False))
        self.assertLessEqual(abs(press.x - 600), 1)
        self.assertLessEqual(abs(press.y - 380), 1)
        await harness.xdotool("mousemove", *at(1150, 700))
        await harness.xdotool("click", "3")
        await harness.xdotool("click", "4")
        await _wait(lambda: any(e.kind == "wheel" for e in events), 5.0, "the wheel")
        right = [e for e in events if e.kind == "button" and e.button == "right"]
        self.assertEqual([(e.pressed, abs(e.x - 1150) <= 1, abs(e.y - 700) <= 1) for e in right],
                         [(True, True, True), (False, True, True)])
        self.assertEqual([(e.dx, e.dy) for e in events if e.kind == "wheel"], [(0, 1)])
        await harness.screenshot("11-controlling")

        # Keys: characters as themselves, named keys by name, press and release.
        del events[:]
        await harness.xdotool("key", "a", "shift+b", "Return", "ctrl+c", "F2")
        # (xdotool lets go of a combination's keys in the order it pressed them)
        expected = [("a", True), ("a", False), ("shift", True), ("B", True), ("shift", False), ("B", False),
                    ("enter", True), ("enter", False), ("ctrl_l", True), ("c", True), ("ctrl_l", False),
                    ("c", False), ("f2", True), ("f2", False)]
        await _wait(lambda: len([e for e in events if e.kind == "key"]) >= len(expected), 5.0, "the keys")
        self.assertEqual([(e.key, e.pressed) for e in events if e.kind == "key"], expected)

        # Alt+E while controlling goes to the customer, not to End session.
        del events[:]
        await harness.xdotool("key", "alt+e")
        await _wait(lambda: len(events) >= 4, 5.0, "alt+e")
        self.assertEqual([(e.key, e.pressed) for e in events], [("alt_l", True), ("e", True), ("alt_l", False),
                                                                ("e", False)])
        self.assertEqual((await console.ask("state"))["ended"], "")

        # F8: the menu of combinations; its first entry is Ctrl+Alt+Del.
        del events[:]
        await harness.xdotool("key", "F8")
        await deferLater(0.5)
        await harness.screenshot("12-send-keys-menu")
        await harness.xdotool("key", "Return")
        await _wait(lambda: len(events) >= 6, 5.0, "Ctrl+Alt+Del")
        self.assertEqual([(e.key, e.pressed) for e in events],
                         [("ctrl_l", True), ("alt_l", True), ("delete", True), ("delete", False),
                          ("alt_l", False), ("ctrl_l", False)])

        # The customer revokes control: back to view only, nothing goes out.
        harness.agent.revoke(sc.CONTROL)
        state = await console.until(lambda s: not s["controlling"], timeout=2.0, what="control revoked")
        self.assertIn("control not allowed", state["mode"])
        del events[:]
        await harness.xdotool("mousemove", *at(100, 100))
        await harness.xdotool("click", "1")
        await harness.keys("y")
        await deferLater(0.5)
        self.assertEqual(events, [])
        await harness.screenshot("13-control-revoked")

    async def test_terminal(self):
        """
        The customer's shell in the Terminal tab: colours and cursor
        movement rendered by the emulator, the pty's size is the view's,
        Ctrl+C interrupts, the exit status shows.
        """
        harness = await Harness(self).start()
        console = harness.console
        await harness.allow_everything()
        await harness.keys("alt+t", "Return")
        state = await console.until(lambda s: s["terminal"]["running"], what="the shell")
        columns, rows = state["terminal"]["size"]
        self.assertGreater(columns, 80)  # the view's size, not the default
        await _wait(lambda: any("shell" in a[0] for a in harness.agent_ui.named("activity_changed")), 5.0,
                    "the agent's shell")

        async def run(command, shows):
            await harness.type(command + "\n")
            return await console.until(lambda s: shows in [line.rstrip() for line in s["terminal"]["lines"]],
                                       what=repr(shows))

        await run("printf '\\033[31mRED\\033[0m \\033[1;32mGREEN\\033[0m \\033[7mREV\\033[0m\\n'", "RED GREEN REV")
        await run("printf 'abcdef\\033[3Dxy\\n'", "abcxyf")
        state = await run("stty size", f"{rows} {columns}")
        lines = [line.rstrip() for line in state["terminal"]["lines"]]
        self.assertIn("RED GREEN REV", lines)
        self.assertIn("abcxyf", lines)
        row = lines.index("RED GREEN REV")
        red = await console.ask("colours", row, 0)
        green = await console.ask("colours", row, 4)
        reverse = await console.ask("colours", row, 10)
        self.assertEqual(red, ["#cd3131", "#101010"])
        self.assertEqual(green, ["#0dbc79", "#101010"])
        self.assertEqual(reverse, ["#101010", "#d0d0d0"])
        shot = await harness.screenshot("14-terminal")
        # Red pixels are on screen in the terminal's first line (where "RED" is drawn).
        x, y, width, height = state["terminal"]["at"]
        line_height = height // rows
        first_line = shot.crop((x, y + row * line_height, x + width, y + (row + 2) * line_height))
        self.assertTrue(any(r > 150 and g < 80 and b < 80 for r, g, b in first_line.getdata()), "red text drawn")

        # A larger window: the customer's terminal is resized with the view.
        await console.ask("geometry", "1200x760+0+0")
        state = await console.until(lambda s: s["terminal"]["size"][0] > columns, what="a wider terminal")
        wider, taller = state["terminal"]["size"]
        self.assertGreater(taller, rows)
        await run("stty size", f"{taller} {wider}")

        # Arrows are escape sequences, in the application cursor mode when the program asks for it.
        await harness.type("printf '\\033[?1h'; head -c 6 | od -An -c; printf '\\033[?1l'\n")
        await deferLater(0.5)
        await harness.xdotool("key", "Up", "Left", "ctrl+d")
        await console.until(lambda s: any(line.split()[-6:] == ["033", "O", "A", "033", "O", "D"]
                                          for line in s["terminal"]["lines"]), what="the arrows' sequences")

        # Ctrl+C interrupts a running command.
        await harness.type("sleep 30\n")
        await deferLater(0.5)
        await harness.xdotool("key", "ctrl+c")
        await harness.type("echo status=$?\n")
        await console.until(lambda s: any(line.startswith("status=130") for line in s["terminal"]["lines"]),
                            what="the interrupted sleep")

        await harness.type("exit 3\n")
        state = await console.until(lambda s: not s["terminal"]["running"], what="the exit")
        self.assertEqual(state["terminal"]["status"], "The command prompt ended (exit status 3).")
        await harness.screenshot("15-terminal-exited")

    async def test_files_system_information_notes_end_and_rating(self):
        """
        A file sent through the file dialog arrives with its hash shown; a
        file asked for arrives; a transfer can be cancelled; system
        information fills its tabs; notes are kept; End session (Alt+E)
        ends it for the customer, whose rating then shows.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        theirs = os.path.join(base, "printer-log.txt")
        with open(theirs, "wb") as f:
            f.write(b"paper jam at 09:12\n" * 5000)
        harness = await Harness(self).start(picked=theirs)
        console = harness.console
        await harness.allow_everything()

        # Send: Alt+U opens the file dialog; type the path.
        mine = os.path.join(base, "driver.bin")
        content = support.block(b"driver", 3 * 1024 * 1024 + 17)
        with open(mine, "wb") as f:
            f.write(content)
        await harness.keys("alt+f", "alt+u")
        dialog = (await harness.xdotool("search", "--sync", "--onlyvisible", "--name", "Send a file")).split()[0]
        await harness.screenshot("16-file-dialog")
        await harness.xdotool("windowfocus", "--sync", dialog)
        await harness.type(mine)
        await harness.xdotool("key", "Return")
        (outcome, transfer) = await harness.agent_ui.next("transfer_changed", lambda a: a[0] is not None)
        self.assertEqual(outcome, "done")
        digest = hashlib.sha256(content).hexdigest()
        with open(os.path.join(harness.platform.receive_directory, "driver.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)
        state = await console.until(lambda s: s["transfers"] and s["transfers"][0]["outcome"] == "done",
                                    what="the file sent")
        self.assertEqual(state["transfers"][0]["sha256"], f"SHA-256 {digest}")
        self.assertEqual(state["transfers"][0]["state"], "Sent")

        # Ask for one: Alt+G; the customer's double picks a file.
        await harness.keys("alt+g")
        state = await console.until(lambda s: len(s["transfers"]) == 2 and s["transfers"][1]["outcome"] == "done",
                                    what="the file received")
        with open(theirs, "rb") as f:
            self.assertEqual(state["transfers"][1]["sha256"], f"SHA-256 {hashlib.sha256(f.read()).hexdigest()}")
        self.assertEqual(state["transfers"][1]["state"], "Received")
        received = state["transfers"][1]["path"].removeprefix("Saved as ")
        self.assertTrue(received.startswith(harness.console_files), received)
        with open(received, "rb") as f, open(theirs, "rb") as g:
            self.assertEqual(f.read(), g.read())

        # Cancel a large one while it runs.
        large = os.path.join(base, "image.iso")
        with open(large, "wb") as f:
            f.truncate(512 * 1024 * 1024)
        await harness.keys("alt+u")
        dialog = (await harness.xdotool("search", "--sync", "--onlyvisible", "--name", "Send a file")).split()[0]
        await harness.xdotool("windowfocus", "--sync", dialog)
        await harness.type(large)
        await harness.xdotool("key", "Return")
        await console.until(lambda s: len(s["transfers"]) == 3 and s["transfers"][2]["done"] > 0, timeout=30.0,
                            what="the large file under way")
        await harness.screenshot("17-files-progress")
        await console.ask("cancel")
        state = await console.until(lambda s: s["transfers"][2]["outcome"] is not None, what="cancelled")
        self.assertEqual(state["transfers"][2]["outcome"], "cancelled")
        await harness.agent_ui.next("transfer_changed", lambda a: a[0] == "cancelled")
        await harness.screenshot("18-files")

        # System information: Alt+Y fetches it (allowed), every tab filled.
        await harness.keys("alt+y")
        state = await console.until(lambda s: s["system"]["processes"], what="system information")
        system = state["system"]
        self.assertIn("Computer name: reception-pc", system["overview"])
        self.assertIn("Up for: 3 days 4 h 12 min", system["overview"])
        self.assertIn("Installed: 16.0 GiB", system["overview"])
        self.assertEqual(system["processes"][0][1], "firefox-esr")  # busiest first
        self.assertEqual([row[0] for row in system["disks"]], ["/", "/boot/efi"])
        self.assertEqual(system["disks"][0][6], "42 %")
        self.assertIn(["wlp2s0", "up", "192.168.1.23, fe80::1c2:3ff:fe4a:5b6c"], [list(r) for r in system["network"]])
        self.assertEqual(len(system["packages"]), 4)
        self.assertIn("paper jam", system["logs"])
        for index, name in enumerate(("overview", "processes", "disks", "network", "packages", "logs")):
            await console.ask("subtab", index)
            await harness.screenshot(f"19-system-{index}-{name}")

        # Notes.
        await harness.keys("alt+n")
        await harness.type("Cleared the paper jam; reinstalled the driver.")
        state = await console.until(lambda s: s["notes"].endswith("driver."), what="the notes")
        self.assertEqual(state["notes"], "Cleared the paper jam; reinstalled the driver.")
        await harness.screenshot("20-notes")

        # End session: the customer is told; their rating shows.
        await harness.keys("alt+e")
        (reason,) = await harness.agent_ui.next("ended")
        self.assertIn("operator ended", reason)
        await console.until(lambda s: s["ended"], what="ended")
        await harness.agent.close_with_rating(4, "Quick and friendly, thanks!")
        state = await console.until(lambda s: s["rating"], what="the rating")
        self.assertEqual(state["rating"], "Customer's rating: ★★★★☆ (4 of 5) — “Quick and friendly, thanks!”")
        self.assertEqual(state["notes"], "Cleared the paper jam; reinstalled the driver.")
        await harness.screenshot("21-ended-rated")

    async def test_alarm_on_a_wrong_code(self):
        """A customer whose agent has another code: the window says so, loudly."""
        harness = Harness(self)
        try:
            await harness.start(wrong_code=True)
        except Exception:
            pass  # the agent's join may fail as the session stops
        state = await harness.console.until(lambda s: s["alarm"], what="the alarm")
        self.assertIn("wrong code", state["alarm"])
        self.assertEqual(state["badge"], "⚠ NOT VERIFIED")
        shot = await harness.screenshot("22-alarm")
        red = sum(1 for r, g, b in shot.crop((0, 0, 1000, 200)).getdata() if r > 180 and g < 70 and b < 70)
        self.assertGreater(red, 20000, "a large red banner")


def _without_pointer(image: Image.Image, state, x, y) -> Image.Image:
    """C{image} (the picture's area) with the remote pointer's box blanked out."""
    if not state["pointer"]:
        return image
    px, py = state["pointer"][0] - x, state["pointer"][1] - y
    copy = image.copy()
    ImageDraw.Draw(copy).rectangle((px - 1, py - 1, px + 14, py + 22), fill=(0, 0, 0))
    return copy


async def _wait(test, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        await deferLater(0.02)


if __name__ == "__main__":
    console_main(sys.argv[1:])
