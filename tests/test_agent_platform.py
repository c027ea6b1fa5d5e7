"""
The agent's platform pieces: input on a real X display (a Tk window on a
private Xvfb, in its own process so this reactor stays free), the system
information collector, and the local log.
"""

import json
import os
import stat
import subprocess
import sys
import typing

import attrs
import Xlib.X
import Xlib.XK
import Xlib.display
import Xlib.ext.xtest
from twisted.internet import defer, protocol, reactor, task
from twisted.logger import LogPublisher, Logger, globalLogPublisher
from twisted.trial import unittest

from agent import logfile
from agent.input import NoDisplay, PynputInput
from agent.sysinfo import SystemInfoCollector, _compressed_size
from tests import xvfb
from wire import sysinfo
from wire.screen import InputEvent, Monitor
from wire.session_commands import MAX_BIG_VALUE

# A window with an entry (focused) and a canvas; it reports the canvas's
# place, pointer buttons on the canvas and keys in the entry on stdout,
# and the entry's text when asked with "get" on stdin.
TK_PROBE = r"""
import json, os, sys, time, tkinter

root = tkinter.Tk()
root.geometry("420x260+300+200")
entry = tkinter.Entry(root, width=40)
entry.pack(padx=10, pady=10)
area = tkinter.Canvas(root, width=200, height=120, background="white", highlightthickness=0)
area.pack()

def say(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()

area.bind("<ButtonPress>", lambda e: say("press", e.num, e.x_root, e.y_root))
area.bind("<ButtonRelease>", lambda e: say("release", e.num, e.x_root, e.y_root))
entry.bind("<KeyPress>", lambda e: say("key", e.keysym, int(bool(e.send_event))), add="+")

pending = b""

def command(*_):
    global pending
    chunk = os.read(0, 4096)
    if not chunk:
        root.destroy()
        return
    pending += chunk
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        root.update()
        if line.strip() == b"get":
            say("entry", json.dumps(entry.get()))

root.tk.createfilehandler(sys.stdin, tkinter.READABLE, command)
while not area.winfo_viewable():
    root.update()
    time.sleep(0.01)
entry.focus_force()
root.update()
say("ready", area.winfo_rootx(), area.winfo_rooty(), area.winfo_width(), area.winfo_height())
root.mainloop()
"""


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


class TkWindow(protocol.ProcessProtocol):
    """The Tk probe running in its own process; C{lines} is what it said, split into words."""

    def __init__(self):
        self.lines: list[list[str]] = []
        self.errors = b""
        self._buffer = b""
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            kind, _, rest = line.decode("utf-8").partition(" ")
            self.lines.append([kind, rest] if kind == "entry" else [kind, *rest.split()])

    def errReceived(self, data):
        self.errors += data

    def processEnded(self, reason):
        self.ended.callback(None)

    async def wait(self, kind: str, after: int = 0, count: int = 1, timeout: float = 10.0) -> list[list[str]]:
        """The first C{count} lines of C{kind} said after line number C{after}."""
        for _ in range(int(timeout / 0.02)):
            found = [words for words in self.lines[after:] if words[0] == kind]
            if len(found) >= count:
                return found[:count]
            if self.ended.called:
                break
            await sleep(0.02)
        raise AssertionError(f"the Tk window did not say {kind!r} ({count}); it said {self.lines}, {self.errors!r}")

    async def entry(self) -> str:
        """The entry's text, once the window has handled every event sent so far."""
        after = len(self.lines)
        self.transport.write(b"get\n")
        [words] = await self.wait("entry", after)
        return json.loads(words[1])

    async def entry_becomes(self, expected: str, timeout: float = 10.0) -> str:
        """The entry's text once it is C{expected}, or the last one seen."""
        for _ in range(int(timeout / 0.05)):
            text = await self.entry()
            if text == expected:
                break
            await sleep(0.05)
        return text

    async def close(self):
        self.transport.closeStdin()
        timer = reactor.callLater(5, self.transport.signalProcess, "KILL")
        await self.ended
        if timer.active():
            timer.cancel()


class DisplayTestCase(unittest.TestCase):
    """A private Xvfb, the Tk window on it and an X connection to check the server's state."""

    async def open(self, monitor=None):
        self.server = xvfb.start(self)
        self.window = TkWindow()
        reactor.spawnProcess(self.window, sys.executable, [sys.executable, "-c", TK_PROBE],
                             env=self.server.environment())
        self.addCleanup(self.window.close)
        [ready] = await self.window.wait("ready")
        self.canvas = tuple(int(n) for n in ready[1:])  # x, y, width, height
        self.display = Xlib.display.Display(self.server.display)
        self.addCleanup(self.display.close)
        self.sink = PynputInput(monitor)
        self.addCleanup(self.sink.close)

    def key(self, key: str, pressed: bool) -> None:
        self.sink.apply(InputEvent("key", key=key, pressed=pressed))

    def tap(self, *keys: str) -> None:
        for key in keys:
            self.key(key, True)
            self.key(key, False)

    def pointer(self) -> tuple[int, int, int]:
        """Where the X server has the pointer, and its button and modifier state."""
        reply = self.display.screen().root.query_pointer()
        return reply.root_x, reply.root_y, reply.mask

    def keys_down(self) -> list[int]:
        keymap = self.display.query_keymap()
        return [8 * i + bit for i, byte in enumerate(keymap) for bit in range(8) if byte & (1 << bit)]


class TypingTests(DisplayTestCase):
    """Text typed through L{PynputInput} reaches a Tk entry."""

    async def test_characters_shift_ctrl_and_named_keys(self):
        """
        Characters on the layout and off it (C{ü}, C{€}), an upper-case
        letter with Shift held, Ctrl+A (line start in Tk's entry on X11),
        End and BackSpace all arrive, as real (not synthetic) key events.
        """
        await self.open()
        self.tap("b", "ü", "€")
        self.key("shift_l", True)
        self.tap("A")
        self.key("shift_l", False)
        self.key("ctrl_l", True)
        self.tap("a")
        self.key("ctrl_l", False)
        self.tap("x", "end", "z", "z", "backspace")
        self.assertEqual(await self.window.entry_becomes("xbü€Az"), "xbü€Az")
        keys = [words[1:] for words in self.window.lines if words[0] == "key"]
        self.assertIn(["udiaeresis", "0"], keys)
        self.assertIn(["EuroSign", "0"], keys)
        self.assertEqual([k for k in keys if k[1] != "0"], [], "every key event is real, none sent")
        self.assertEqual(self.keys_down(), [])

    async def test_ctrl_slash_selects_all_and_typing_replaces(self):
        """Ctrl+/ (select all in Tk's entry on X11), then typing replaces the selection."""
        await self.open()
        self.tap(*"old text")
        self.assertEqual(await self.window.entry_becomes("old text"), "old text")
        self.key("ctrl_r", True)
        self.tap("/")
        self.key("ctrl_r", False)
        self.tap(*"Neu: 5 €")
        self.assertEqual(await self.window.entry_becomes("Neu: 5 €"), "Neu: 5 €")

    async def test_exact_characters_whatever_shift(self):
        """A character comes out as sent: Shift held does not change C{1} or C{a}, nor C{ü}."""
        await self.open()
        self.key("shift", True)
        self.tap("1", "a", "!", "Ü", "ü")
        self.key("shift", False)
        self.tap("ß", "中")
        self.assertEqual(await self.window.entry_becomes("1a!Üüß中"), "1a!Üüß中")

    async def test_caps_lock_does_not_change_characters(self):
        """With the customer's Caps Lock on, letters on and off the layout still come out as sent."""
        await self.open()
        self.tap("caps_lock")
        self.assertTrue(self.pointer()[2] & Xlib.X.LockMask)
        self.tap("a", "A", "ü", "Ü", "1")
        self.tap("caps_lock")
        self.tap("a", "A", "ü", "Ü")
        self.assertEqual(await self.window.entry_becomes("aAüÜ1aAüÜ"), "aAüÜ1aAüÜ")

    def set_layout(self, *arguments: str) -> None:
        subprocess.run(["setxkbmap", *arguments], env=self.server.environment(), check=True, timeout=10)

    async def test_layout_changed_during_the_session(self):
        """The customer switches to a German layout after typing began: the new layout is followed."""
        await self.open()
        self.tap("z", "€")
        self.assertEqual(await self.window.entry_becomes("z€"), "z€")
        self.set_layout("de")
        self.tap("z", "y", "ü", "@", "€", "Ä")
        self.assertEqual(await self.window.entry_becomes("z€zyü@€Ä"), "z€zyü@€Ä")

    async def test_second_layout_group_active(self):
        """With a Russian group active, Latin letters still come out Latin (and Cyrillic ones Cyrillic)."""
        await self.open()
        self.set_layout("-layout", "us,ru", "-option", "grp:alt_shift_toggle")
        alt, shift = (self.display.keysym_to_keycode(Xlib.XK.string_to_keysym(name)) for name in ("Alt_L", "Shift_L"))
        for kind, code in ((Xlib.X.KeyPress, alt), (Xlib.X.KeyPress, shift),
                           (Xlib.X.KeyRelease, shift), (Xlib.X.KeyRelease, alt)):
            Xlib.ext.xtest.fake_input(self.display, kind, code)
        self.display.sync()
        self.assertTrue(self.pointer()[2] & 0x6000, "the second group is active")
        self.tap("a", "b", "C", "я", "Ж")
        self.assertEqual(await self.window.entry_becomes("abCяЖ"), "abCяЖ")

    async def test_unknown_key_name(self):
        """An unknown key name is refused with ValueError and nothing is typed."""
        await self.open()
        with self.assertRaises(ValueError) as caught:
            self.key("hyperdrive", True)
        self.assertIn("hyperdrive", str(caught.exception))
        self.tap("k")
        self.assertEqual(await self.window.entry_becomes("k"), "k")

    async def test_close_gives_back_borrowed_key_codes(self):
        """A character off the layout borrows an empty key code; L{PynputInput.close} empties it again."""
        await self.open()
        self.tap("€")
        self.assertEqual(await self.window.entry_becomes("€"), "€")
        euro = 0x20AC
        first = self.display.display.info.min_keycode
        count = self.display.display.info.max_keycode - first + 1

        def mapped():
            return any(euro in row for row in self.display.get_keyboard_mapping(first, count))

        self.assertTrue(mapped())
        self.sink.close()
        self.assertFalse(mapped())


class PointerTests(DisplayTestCase):
    """Pointer events land where the operator pointed."""

    async def test_click_on_offset_monitor(self):
        """Coordinates relative to a monitor at (100, 50) land at the right place; the wheel clicks 4/5."""
        monitor = Monitor(index=1, left=100, top=50, width=1000, height=700)
        await self.open(lambda: monitor)
        x, y = self.canvas[0] + 30, self.canvas[1] + 20
        after = len(self.window.lines)
        self.sink.apply(InputEvent("button", x=x - 100, y=y - 50, button="left", pressed=True))
        self.sink.apply(InputEvent("button", x=x - 100, y=y - 50, button="left", pressed=False))
        [press] = await self.window.wait("press", after)
        [release] = await self.window.wait("release", after)
        self.assertEqual(press, ["press", "1", str(x), str(y)])
        self.assertEqual(release, ["release", "1", str(x), str(y)])
        after = len(self.window.lines)
        self.sink.apply(InputEvent("wheel", dx=0, dy=2))
        self.sink.apply(InputEvent("wheel", dx=0, dy=-1))
        presses = await self.window.wait("press", after, count=3)
        self.assertEqual([words[1] for words in presses], ["4", "4", "5"])
        self.sink.apply(InputEvent("move", x=5000, y=-20))
        self.assertEqual(self.pointer()[:2], (100 + 999, 50))
        self.assertEqual(xvfb.xdotool(self.server, "getmouselocation").split()[:2], ["x:1099", "y:50"])

    async def test_absolute_coordinates_by_default(self):
        """Without a monitor, coordinates are virtual-screen ones, as the session core gives them."""
        await self.open()
        x, y = self.canvas[0] + 7, self.canvas[1] + 9
        after = len(self.window.lines)
        self.sink.apply(InputEvent("button", x=x, y=y, button="right", pressed=True))
        self.sink.apply(InputEvent("button", x=x, y=y, button="right", pressed=False))
        [press] = await self.window.wait("press", after)
        self.assertEqual(press, ["press", "3", str(x), str(y)])

    async def test_release_all_mid_drag(self):
        """L{PynputInput.release_all} releases a held button and held keys (control revoked mid-drag)."""
        await self.open()
        x, y = self.canvas[0] + 10, self.canvas[1] + 10
        after = len(self.window.lines)
        self.sink.apply(InputEvent("button", x=x, y=y, button="left", pressed=True))
        self.sink.apply(InputEvent("move", x=x + 50, y=y + 40))
        self.key("shift_l", True)
        self.key("ctrl_l", True)
        self.key("ü", True)
        await self.window.wait("press", after)
        self.assertTrue(self.pointer()[2] & Xlib.X.Button1Mask)
        self.assertEqual(len(self.keys_down()), 3)
        self.sink.release_all()
        [release] = await self.window.wait("release", after)
        self.assertEqual(release, ["release", "1", str(x + 50), str(y + 40)])
        self.assertEqual(self.pointer()[2] & (Xlib.X.Button1Mask | Xlib.X.ShiftMask | Xlib.X.ControlMask), 0)
        self.assertEqual(self.keys_down(), [])
        self.sink.release_all()  # nothing held: nothing happens
        self.sink.apply(InputEvent("button", x=x, y=y, button="left", pressed=False))  # a late release is harmless


class NoDisplayTests(unittest.TestCase):
    def test_no_display(self):
        """Without DISPLAY, input is refused with a clear error."""
        self.patch(os, "environ", {k: v for k, v in os.environ.items() if k != "DISPLAY"})
        with self.assertRaises(NoDisplay) as caught:
            PynputInput().apply(InputEvent("move", x=1, y=1))
        self.assertIn("DISPLAY", str(caught.exception))
        PynputInput().release_all()  # nothing was pressed: no error


def check_types(testcase, value, kind, where="info"):
    """C{value} has exactly the type the attrs annotation C{kind} says, all the way down."""
    if attrs.has(kind):
        testcase.assertIsInstance(value, kind, where)
        hints = typing.get_type_hints(kind)
        for field in attrs.fields(kind):
            check_types(testcase, getattr(value, field.name), hints[field.name], f"{where}.{field.name}")
    elif typing.get_origin(kind) is tuple:
        testcase.assertIs(type(value), tuple, where)
        for i, item in enumerate(value):
            check_types(testcase, item, typing.get_args(kind)[0], f"{where}[{i}]")
    else:
        testcase.assertIs(type(value), kind, f"{where} is {type(value).__name__}, not {kind.__name__}")


class SystemInfoTests(unittest.TestCase):
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    async def test_fields_and_types(self):
        """Every field is there with its exact type; what a Debian machine always has is not empty."""
        info = await SystemInfoCollector().collect()
        check_types(self, info, sysinfo.SystemInfo)
        self.assertTrue(info.hostname)
        self.assertTrue(info.os)
        self.assertTrue(info.os_version)
        self.assertGreater(info.uptime, 0.0)
        self.assertGreater(info.cpu.cores, 0)
        self.assertTrue(info.cpu.model)
        self.assertGreater(info.memory.total, 0)
        self.assertGreater(info.memory.available, 0)
        self.assertTrue(info.disks)
        self.assertTrue(all(d.total > 0 and d.mount for d in info.disks))
        self.assertFalse([d for d in info.disks if d.filesystem in ("proc", "sysfs", "tmpfs", "devtmpfs")])
        self.assertTrue(info.interfaces)
        self.assertIn("lo", [i.name for i in info.interfaces])
        self.assertTrue(info.processes)
        self.assertLessEqual(len(info.processes), 50)
        self.assertTrue(info.packages, "dpkg-query lists the installed packages on Debian")
        self.assertIn("dpkg", [p.name for p in info.packages])
        self.assertEqual(sysinfo.from_json(json.loads(json.dumps(sysinfo.to_json(info)))), info)
        self.assertLessEqual(_compressed_size(info), MAX_BIG_VALUE)

    async def test_os_release_and_syslog_fallback(self):
        """The OS comes from os-release; without journalctl the syslog file's last lines are taken."""
        directory = self.mktemp()
        os.mkdir(directory)
        release = os.path.join(directory, "os-release")
        with open(release, "w") as f:
            f.write('NAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n')
        syslog = os.path.join(directory, "syslog")
        with open(syslog, "w") as f:
            f.writelines(f"line {i} " + "x" * (1000 if i == 299 else 5) + "\n" for i in range(300))
        info = await SystemInfoCollector(os_release=release, syslog=syslog, journalctl="no-such-journalctl",
                                         max_log_lines=50).collect()
        self.assertEqual(info.os, "Debian GNU/Linux")
        self.assertTrue(info.os_version.startswith("12 (bookworm); Linux "))
        self.assertEqual(len(info.log_lines), 50)
        self.assertEqual(info.log_lines[0], "line 250 xxxxx")
        self.assertEqual(len(info.log_lines[-1]), 500)

    async def test_a_failing_part_keeps_its_default_and_is_logged(self):
        """A part that cannot be collected stays empty, the rest is there, and the reason is logged."""
        info = await SystemInfoCollector(dpkg_query="no-such-dpkg-query", journalctl="no-such-journalctl",
                                         syslog="/nonexistent/syslog", cpuinfo="/nonexistent/cpuinfo").collect()
        self.assertEqual(info.packages, ())
        self.assertEqual(info.log_lines, ())
        self.assertTrue(info.hostname)
        self.assertIsInstance(info.cpu.model, str)
        parts = {e.get("part"): e.get("problem") for e in self.events if e.get("log_namespace", "").startswith("agent.sysinfo")}
        self.assertIn("no-such-dpkg-query", parts["packages"])
        self.assertIn("/nonexistent/syslog", parts["log_lines"])

    async def test_fits_the_budget(self):
        """Lists are shortened until the compressed JSON fits the budget."""
        budget = 4000
        info = await SystemInfoCollector(budget=budget).collect()
        self.assertLessEqual(_compressed_size(info), budget)
        self.assertTrue(info.disks and info.hostname)
        self.assertTrue(any("shortened" in str(e.get("problem")) for e in self.events))


class LocalLogTests(unittest.TestCase):
    def setUp(self):
        self.publisher = LogPublisher()
        self.log = Logger(namespace="agent.test", observer=self.publisher)
        self.directory = os.path.join(self.mktemp(), "state", "ponte")

    def start(self, **options):
        local = logfile.start_local_log(self.directory, publisher=self.publisher, **options)
        self.addCleanup(local.stop)
        return local

    def read(self, name=logfile.FILE_NAME):
        with open(os.path.join(self.directory, name), encoding="utf-8") as f:
            return f.read()

    def test_directory_is_private(self):
        """The directory is created 0700 whatever the umask, the file 0600."""
        old = os.umask(0)
        try:
            local = self.start()
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(os.stat(self.directory).st_mode), 0o700)
        self.log.info("started")
        self.assertEqual(stat.S_IMODE(os.stat(local.path).st_mode), 0o600)

    def test_default_directory(self):
        """By default: C{$XDG_STATE_HOME/ponte}, made 0700 even if it existed; else ~/.local/state/ponte."""
        home = self.mktemp()
        state = os.path.join(home, "xdg-state")
        os.makedirs(os.path.join(state, "ponte"), mode=0o755)
        os.chmod(os.path.join(state, "ponte"), 0o755)
        self.patch(os, "environ", {**os.environ, "XDG_STATE_HOME": os.path.abspath(state), "HOME": home})
        local = logfile.start_local_log(publisher=self.publisher)
        self.addCleanup(local.stop)
        self.assertEqual(local.path, os.path.join(os.path.abspath(state), "ponte", "agent.log"))
        self.assertEqual(stat.S_IMODE(os.stat(local.directory).st_mode), 0o700)
        self.assertEqual(logfile.state_directory({"HOME": "/home/c"}), "/home/c/.local/state/ponte")
        self.assertEqual(logfile.state_directory({"HOME": "/home/c", "XDG_STATE_HOME": "relative"}),
                         "/home/c/.local/state/ponte")

    def test_one_line_per_event(self):
        """Time, level, namespace and the formatted message, on one line."""
        self.start()
        self.log.warn("refused a command needing {scope}:\nnot granted", scope="control")
        [line] = self.read().splitlines()
        self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[warn\] agent\.test: "
                               r"refused a command needing control: not granted$")

    def test_failure_is_one_short_line(self):
        self.start()
        try:
            1 / 0
        except ZeroDivisionError:
            self.log.failure("screen capture failed")
        [line] = self.read().splitlines()
        self.assertIn("[critical] agent.test: screen capture failed (ZeroDivisionError: division by zero)", line)

    def test_content_is_never_written(self):
        """Events carrying content fields or bytes are dropped; long lines are cut."""
        self.start()
        self.log.info("chat: {text}", text="my password is hunter2")
        self.log.info("typed {key}", key="h")
        self.log.info("frame {tiles}", tiles=3)
        self.log.info("got {what}", what=b"\x00secret bytes")
        self.log.info("clipboard {clipboard}", clipboard="hunter2")
        self.log.info("an event: {what}", what="y" * 5000)
        written = self.read()
        self.assertNotIn("hunter2", written)
        self.assertNotIn("typed", written)
        self.assertNotIn("frame", written)
        self.assertNotIn("secret", written)
        [line] = written.splitlines()
        self.assertIn("an event: yyy", line)
        self.assertEqual(len(line), logfile.MAX_LINE)

    def test_rotation_at_the_size_limit(self):
        """The file rotates when it reaches the limit; only the last N rotated files are kept."""
        self.start(rotate_length=2000, max_rotated_files=3)
        for i in range(200):
            self.log.info("event number {n} " + "." * 60, n=i)
        names = sorted(os.listdir(self.directory))
        self.assertEqual(names, ["agent.log", "agent.log.1", "agent.log.2", "agent.log.3"])
        for name in names:
            self.assertLessEqual(os.path.getsize(os.path.join(self.directory, name)), 2000 + logfile.MAX_LINE)
        self.assertGreaterEqual(os.path.getsize(os.path.join(self.directory, "agent.log.1")), 2000)
        self.assertIn("event number 199 ", self.read())

    def test_stop(self):
        """After stop, nothing more is written and the observer is gone."""
        local = self.start()
        self.log.info("before")
        local.stop()
        self.log.info("after")
        self.assertEqual([line.rsplit(" ", 1)[-1] for line in self.read().splitlines()], ["before"])
        self.assertTrue(local._file is None)

    def test_default_level_events_from_global_publisher(self):
        """With the global publisher (the default), the agent's own loggers reach the file."""
        from wire import logs

        local = logfile.start_local_log(self.directory)
        self.addCleanup(local.stop)
        logs.logger("agent.session").info("session verified end to end ({side} side)", side="customer")
        self.assertIn("[info] agent.session: session verified end to end (customer side)", self.read())

