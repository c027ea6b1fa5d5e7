"""
Test doubles of the session cores' seams: the customer's panel, the
operator's window and the agent's platform (screen, input, system
information, clipboard).  The shell is the real pty one.
"""

import attrs
from twisted.internet import defer, reactor
from zope.interface import implementer

from agent.interfaces import IAgentUI, IClipboard, IInputSink, IPlatform, IScreenSource, ISystemInfoSource
from agent.shell import PtyShellFactory
from console.interfaces import IConsoleUI
from wire import sysinfo
from wire.screen import Cursor, Frame, Monitor, Tile


class _Recorder:
    """Records every call as (name, arguments) and fires waiters."""

    def __init__(self):
        self.calls = []
        self._waiters = []

    def _note(self, name, *arguments):
        self.calls.append((name, arguments))
        for waiter in list(self._waiters):
            if waiter[0](name, arguments):
                self._waiters.remove(waiter)
                waiter[1].callback(arguments)

    def named(self, name):
        """The arguments of every call of C{name}."""
        return [a for n, a in self.calls if n == name]

    def next(self, name, test=lambda arguments: True):
        """Fires with the arguments of the first (past or future) call of C{name} passing C{test}."""
        for n, a in self.calls:
            if n == name and test(a):
                return defer.succeed(a)
        d = defer.Deferred()
        self._waiters.append((lambda n, a: n == name and test(a), d))
        return d


@implementer(IAgentUI)
class AgentUI(_Recorder):
    """The customer: allows what is in C{allow} (everything when None)."""

    def __init__(self, allow=None, picked=None):
        super().__init__()
        self.allow = allow
        self.picked = picked

    def operator_identified(self, identity):
        self._note("operator_identified", identity)

    def verified(self):
        self._note("verified")

    def alarm(self, message):
        self._note("alarm", message)

    def ask_consent(self, scopes, everything, duration):
        self._note("ask_consent", scopes, everything, duration)
        return defer.succeed([s for s in scopes if self.allow is None or s in self.allow])

    def grants_changed(self, grants, reason):
        self._note("grants_changed", grants, reason)

    def activity_changed(self, activity):
        self._note("activity_changed", activity)

    def chat_received(self, message):
        self._note("chat_received", message)

    def transfer_changed(self, transfer):
        self._note("transfer_changed", transfer.outcome, attrs.evolve(transfer))

    def pick_file(self, prompt):
        self._note("pick_file", prompt)
        return defer.succeed(self.picked)

    def ended(self, reason):
        self._note("ended", reason)


@implementer(IConsoleUI)
class ConsoleUI(_Recorder):
    """The operator's window."""

    def verified(self):
        self._note("verified")

    def alarm(self, message):
        self._note("alarm", message)

    def grants_changed(self, grants, reason):
        self._note("grants_changed", grants, reason)

    def chat_received(self, message):
        self._note("chat_received", message)

    def transfer_changed(self, transfer):
        self._note("transfer_changed", transfer.outcome, attrs.evolve(transfer))

    def frame_received(self, frame):
        self._note("frame_received", frame)

    def cursor_moved(self, x, y, visible, shape):
        self._note("cursor_moved", x, y, visible, shape)

    def shell_output(self, shell_id, data):
        self._note("shell_output", shell_id, data)

    def shell_exited(self, shell_id, status, signal):
        self._note("shell_exited", shell_id, status, signal)

    def clipboard_received(self, text):
        self._note("clipboard_received", text)

    def rated(self, stars, comment):
        self._note("rated", stars, comment)

    def ended(self, reason):
        self._note("ended", reason)


@implementer(IScreenSource)
class Screen:
    """A 64×32 screen whose frames carry one raw tile with C{pattern}."""

    def __init__(self, pattern: bytes = b"\x10\x20\x30"):
        self.pattern = pattern
        self.grabs = 0
        self.stopped = 0

    def monitors(self):
        return [Monitor(0, 0, 0, 64, 32, True), Monitor(1, 64, 0, 32, 32, False)]

    def next_frame(self, monitor):
        self.grabs += 1
        return defer.succeed(Frame(monitor, 64, 32, (Tile(0, 0, 16, 16, "raw", self.pattern * 256),)))

    def cursor(self, monitor):
        return Cursor(7, 9, True, "arrow")

    def windows(self):
        return [(1, "Spreadsheet")]

    def share_window(self, window_id):
        self.shared = window_id

    def stop(self):
        self.stopped += 1


@implementer(IInputSink)
class InputSink:
    """Keeps the events it was given."""

    def __init__(self):
        self.events = []
        self.released = 0

    def apply(self, event):
        self.events.append(event)

    def release_all(self):
        self.released += 1

    def close(self):
        self.closed = True


@implementer(ISystemInfoSource)
class SystemInfoSource:
    def __init__(self, hostname="customer-pc"):
        self.hostname = hostname

    def collect(self):
        return defer.succeed(sysinfo.SystemInfo(os="Linux", hostname=self.hostname,
                                                processes=(sysinfo.Process(1, "init", "root", 0.5, 1024),)))


@implementer(IClipboard)
class ClipboardDouble:
    def __init__(self):
        self.texts = []

    def set_text(self, text):
        self.texts.append(text)


@implementer(IPlatform)
class Platform:
    """Doubles for everything but the shell (a real pty running /bin/sh)."""

    def __init__(self, receive_directory, hostname="customer-pc"):
        self.screen = Screen()
        self.input = InputSink()
        self.shells = PtyShellFactory(reactor, "/bin/sh")
        self.system_info = SystemInfoSource(hostname)
        self.clipboard = ClipboardDouble()
        self.receive_directory = receive_directory
