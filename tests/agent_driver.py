"""
Drives the real C{ponte-agent} program on a private Xvfb for the tests:
starts it against a test gateway, waits for its windows by title, presses
keys in them with xdotool, takes screenshots, and watches the process
(its exit, and that it never listens on a socket).
"""

import os
import subprocess
import sys
import time

import psutil
from twisted.internet import defer, protocol, reactor, threads

from tests import session_support, xvfb

# Screenshots of every step go here (the tests' temporary directory by default).
SCREENSHOTS = os.environ.get("PONTE_SCREENSHOTS", "")


class _Exit(protocol.ProcessProtocol):
    def __init__(self):
        self.ended = defer.Deferred()
        self.output = bytearray()

    def childDataReceived(self, fd, data):
        self.output += data

    def processEnded(self, reason):
        self.ended_at = time.monotonic()
        self.ended.callback(getattr(reason.value, "exitCode", None))


class AgentProgram:
    """One running C{ponte-agent} on C{server}'s display."""

    def __init__(self, testcase, server: xvfb.Xvfb, gateway, extra=()):
        self.testcase = testcase
        self.server = server
        self.home = os.path.abspath(testcase.mktemp())
        os.makedirs(self.home)
        self.receive_directory = os.path.join(self.home, "received")
        ca = os.path.join(self.home, "ca.crt")
        with open(ca, "wb") as f:
            f.write(gateway.ca)
        operator_ca = os.path.join(self.home, "operator-ca.crt")
        with open(operator_ca, "wb") as f:
            f.write(session_support.operator_ca(gateway))
        arguments = [
            sys.executable, "-m", "agent.main", "--gateway", "127.0.0.1",
            "--raw-port", str(gateway.port), "--https-port", str(gateway.https_port),
            "--http-port", str(gateway.http_port), "--ca", ca, "--operator-ca", operator_ca,
            "--receive-directory", self.receive_directory, *extra,
        ]
        environment = {
            **server.environment(), "HOME": self.home, "XDG_STATE_HOME": os.path.join(self.home, "state"),
            "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        }
        environment.pop("https_proxy", None)
        self.exit = _Exit()
        self.process = reactor.spawnProcess(self.exit, sys.executable, arguments, env=environment)
        self.pid = self.process.pid
        self.listening_seen = []
        self.shots = []
        testcase.addCleanup(self._kill)

    def _kill(self):
        if not self.exit.ended.called:
            self.process.signalProcess("KILL")
        return self.exit.ended

    def check_not_listening(self) -> None:
        """Record any listening socket the agent process has right now."""
        try:
            sockets = psutil.Process(self.pid).net_connections(kind="all")
        except psutil.Error:
            return
        self.listening_seen += [s for s in sockets if s.status == psutil.CONN_LISTEN]

    def xdotool(self, *arguments: str) -> defer.Deferred:
        """Run xdotool off the reactor thread."""
        self.check_not_listening()
        return threads.deferToThread(xvfb.xdotool, self.server, *arguments)

    async def window(self, title: str, timeout: float = 20.0) -> str:
        """The id of the first window whose title contains C{title}, once it is mapped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = await self.xdotool("search", "--onlyvisible", "--name", title)
                return found.split()[0]
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no window titled {title!r} within {timeout} s; output: {bytes(self.exit.output)[-2000:]!r}")
                if self.exit.ended.called:
                    raise AssertionError(f"the agent exited; output: {bytes(self.exit.output)[-3000:]!r}")
                await deferLater(0.1)

    async def keys(self, window: str, *keys: str) -> None:
        """Focus C{window} and press C{keys} (xdotool names, e.g. C{alt+a})."""
        await self.xdotool("windowfocus", "--sync", window)
        await self.xdotool("key", "--clearmodifiers", *keys)

    async def type(self, window: str, text: str) -> None:
        """Focus C{window} and type C{text}."""
        await self.xdotool("windowfocus", "--sync", window)
        await self.xdotool("type", "--delay", "20", text)

    def close(self, window: str) -> defer.Deferred:
        """Ask C{window} to close, as a window manager's close button does (WM_DELETE_WINDOW)."""
        return threads.deferToThread(_delete_window, self.server.display, int(window))

    async def close_and_wait(self, window: str, attempts: int = 3, each: float = 10.0):
        """
        Close C{window} (WM_DELETE_WINDOW) and fire with the exit status;
        on a loaded machine the first message can come before the program
        handles it, so it is sent again (at most C{attempts} times).
        """
        for _ in range(attempts):
            await self.close(window)
            try:
                return await _within(self.exit.ended, each)
            except defer.TimeoutError:
                continue
        return await self.exit.ended

    async def screenshot(self, name: str) -> str:
        """Save the whole display as a PNG named after the step; returns its path."""
        directory = SCREENSHOTS or os.path.abspath(self.testcase.mktemp())
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{name}.png")
        await deferLater(0.3)  # let Tk draw
        await threads.deferToThread(_grab, self.server.display, path)
        self.shots.append(path)
        return path


def _within(d: defer.Deferred, seconds: float) -> defer.Deferred:
    """Fires with C{d}'s result (leaving C{d} as it is), or fails with TimeoutError after C{seconds}."""
    out = defer.Deferred()

    def done(result):
        if not out.called:
            out.callback(result)
        return result

    d.addBoth(done)
    timer = reactor.callLater(seconds, lambda: out.called or out.errback(defer.TimeoutError()))

    def stop(result):
        if timer.active():
            timer.cancel()
        return result

    return out.addBoth(stop)


def _delete_window(display_name: str, window_id: int) -> None:
    from Xlib import X, display
    from Xlib.protocol import event

    connection = display.Display(display_name)
    try:
        window = connection.create_resource_object("window", window_id)
        protocols = connection.intern_atom("WM_PROTOCOLS")
        delete = connection.intern_atom("WM_DELETE_WINDOW")
        message = event.ClientMessage(window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        window.send_event(message, event_mask=X.NoEventMask)
        connection.flush()
    finally:
        connection.close()


def _grab(display: str, path: str) -> None:
    import mss
    from PIL import Image

    with mss.MSS(display=display) as grabber:
        shot = grabber.grab(grabber.monitors[1])
        Image.frombytes("RGB", shot.size, shot.rgb).save(path)


def deferLater(seconds: float) -> defer.Deferred:
    """Wait C{seconds} without blocking the reactor."""
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


async def to_panel(testcase, extra=(), **gateway_options):
    """
    The customer's journey up to a verified session, taking a screenshot of
    each window: a private Xvfb (C{testcase.server}), a test gateway, a
    logged-in operator's desk and the real agent program.

    @return: the agent program, its panel's window id, the console's
        session core and its UI double.
    """
    from tests import support
    from tests.session_doubles import ConsoleUI

    testcase.server = xvfb.start(testcase)
    gateway = support.RunningGateway(testcase, **gateway_options)
    desk = await session_support.logged_in_desk(testcase, gateway)
    live = await desk.new_code()
    agent = AgentProgram(testcase, testcase.server, gateway, extra)
    window = await agent.window("remote support")
    await agent.screenshot("1-code-entry")
    # Forgiving typing: lower case, spaces and a dash.
    agent.code = live.code()
    await agent.type(window, live.display().lower().replace("-", " - "))
    await agent.screenshot("1b-code-typed")
    await agent.keys(window, "Return")
    await agent.window("Alice Agostini is waiting")
    await agent.screenshot("2-terms")
    testcase.assertNotIn(live.routing, desk.waiting, "nothing joins before Accept")
    await agent.keys(window, "alt+a")
    await support.wait_for(lambda: live.routing in desk.waiting)
    # Waiting for the operator: the panel shows the code (a teammate may ask for it).
    await agent.screenshot("2b-panel-waiting")
    console_ui = ConsoleUI()
    console = await desk.pick_up(live.routing, console_ui)
    testcase.addCleanup(lambda: console.close() or console.ended)
    await console_ui.next("verified")
    panel = await agent.window("Alice Agostini is connected")
    await agent.screenshot("3-panel-verified")
    return agent, panel, console, console_ui
