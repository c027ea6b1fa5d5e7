"""
Drives the real C{ponte-console} program on a private Xvfb for the tests:
starts it against a test gateway, presses keys in its windows with xdotool
(the helpers of L{tests.agent_driver}), reads the clipboard and the text
its windows show (through Tk's C{send}, from a separate Tk process on the
same display), and takes screenshots.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)

# Walks the widget tree and lists what each mapped widget shows: labels'
# and buttons' texts, entries' contents, tree views' rows.
_TEXTS = r"""
proc ponte_texts {w} {
    set out {}
    foreach c [winfo children $w] {
        if {![winfo ismapped $c]} continue
        catch {lappend out [$c cget -text]}
        if {[winfo class $c] in {TEntry Entry}} {lappend out [$c get]}
        if {[winfo class $c] eq "Treeview"} {
            foreach i [$c children {}] {lappend out [join [$c item $i -values] " | "]}
        }
        set out [concat $out [ponte_texts $c]]
    }
    return $out
}
ponte_texts .
"""

_SEND = """
import sys, tkinter
root = tkinter.Tk()
root.withdraw()
what, argument = sys.argv[1], sys.argv[2]
if what == "clipboard":
    try:
        print(root.clipboard_get(), end="")
    except tkinter.TclError:
        pass
else:
    names = [n for n in root.tk.splitlist(root.tk.call("winfo", "interps")) if n.startswith("ponte-console")]
    result = root.tk.call("send", names[0], argument)
    for item in root.tk.splitlist(result) if what == "list" else [result]:
        print(str(item).replace("\\n", " "))
"""


def ask_display(server, what: str, argument: str = "") -> str:
    """Run one Tk request on C{server}'s display (blocking: call it in a thread)."""
    return subprocess.run([sys.executable, "-c", _SEND, what, argument], env=server.environment(),
                          capture_output=True, text=True, timeout=10, check=True).stdout


def program(testcase, server, gateway, ca: bytes | None = None, extra=(), home=None):
    """
    A running C{ponte-console} on C{server}'s display, pointed at
    C{gateway} (trusting C{ca}, by default the gateway's own CA).
    """
    from tests.agent_driver import AgentProgram

    class ConsoleProgram(AgentProgram):
        def __init__(self):
            from twisted.internet import reactor

            from tests.agent_driver import _Exit

            self.testcase = testcase
            self.server = server
            self.home = home or os.path.abspath(testcase.mktemp())
            os.makedirs(self.home, exist_ok=True)
            self.ca_path = os.path.join(self.home, "ca.crt")
            with open(self.ca_path, "wb") as f:
                f.write(gateway.ca if ca is None else ca)
            self.receive_directory = os.path.join(self.home, "received")
            arguments = [
                sys.executable, "-m", "console.main", "--gateway", "127.0.0.1",
                "--raw-port", str(gateway.port), "--https-port", str(gateway.https_port),
                "--http-port", str(gateway.http_port), "--ca", self.ca_path,
                "--receive-directory", self.receive_directory, *extra,
            ]
            environment = {
                **server.environment(), "HOME": self.home, "XDG_CONFIG_HOME": os.path.join(self.home, "config"),
                "PYTHONPATH": PROJECT,
            }
            environment.pop("https_proxy", None)
            self.exit = _Exit()
            self.process = reactor.spawnProcess(self.exit, sys.executable, arguments, env=environment)
            self.pid = self.process.pid
            self.listening_seen = []
            self.shots = []
            testcase.addCleanup(self._kill)

        def texts(self):
            """Fires with the texts the console's windows show now, one string each."""
            from twisted.internet import threads

            d = threads.deferToThread(ask_display, self.server, "list", _TEXTS)
            return d.addCallback(lambda out: out.splitlines())

        async def wait_for_text(self, wanted, timeout: float = 15.0) -> list:
            """The texts shown, once one contains C{wanted} (a string, or a compiled pattern to search)."""
            import time

            from tests.agent_driver import deferLater

            deadline = time.monotonic() + timeout
            while True:
                texts = await self.texts()
                if any(wanted.search(t) if hasattr(wanted, "search") else wanted in t for t in texts):
                    return texts
                if time.monotonic() > deadline or self.exit.ended.called:
                    raise AssertionError(f"{wanted!r} not shown within {timeout} s; shown: {texts!r}; "
                                         f"output: {bytes(self.exit.output)[-3000:]!r}")
                await deferLater(0.2)

        def clipboard(self):
            """Fires with the clipboard's text (read by another Tk program on the display)."""
            from twisted.internet import threads

            return threads.deferToThread(ask_display, self.server, "clipboard")

        def output(self) -> str:
            return bytes(self.exit.output).decode("utf-8", "replace")

    return ConsoleProgram()
