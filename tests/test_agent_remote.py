"""
The remote-support job through the real C{ponte-agent} program on Xvfb,
seen from the operator's console core: the screen it receives matches the
customer's display, pointer and typed text reach a Tk entry (and stop when
control is revoked), a file arrives intact, system information is typed,
the clipboard reaches the customer.
"""

import hashlib
import os
import sys

from PIL import Image, ImageChops, ImageStat
from twisted.internet import reactor, threads
from twisted.trial import unittest

from tests import agent_driver, support
from tests.test_agent_platform import TK_PROBE, TkWindow
from wire import session_commands as sc
from wire import sysinfo, tiles
from wire.screen import InputEvent


class RemoteSupportTests(unittest.TestCase):
    timeout = 60

    async def _session_with_everything(self):
        agent, panel, console, console_ui = await agent_driver.to_panel(self)
        self.probe = TkWindow()
        reactor.spawnProcess(self.probe, sys.executable, [sys.executable, "-c", TK_PROBE],
                             env=self.server.environment())
        self.addCleanup(self.probe.close)
        [ready] = await self.probe.wait("ready")
        self.canvas_at = tuple(int(n) for n in ready[1:])
        asking = console.request_consent(list(sc.SCOPES), everything=True)
        await agent_driver.deferLater(0.5)
        await agent.screenshot("8-allow-everything")
        await agent.keys(panel, "alt+a")
        answer = await asking
        self.assertEqual(sorted(answer["granted"]), sorted(sc.SCOPES))
        return agent, panel, console, console_ui

    async def test_screen_control_files_system_information_clipboard(self):
        agent, panel, console, console_ui = await self._session_with_everything()

        # The screen: the console's decoded picture matches the display.
        (monitor,) = await console.monitors()
        self.assertEqual((monitor.width, monitor.height), (1280, 800))
        await console.watch(monitor.index, credit=1)
        (frame,) = await console_ui.next("frame_received")
        picture = tiles.decode(frame, None)
        picture.save(os.path.join(os.path.dirname(await agent.screenshot("9-display")), "9b-console-picture.png"))
        shown = Image.open(agent.shots[-1]).convert("RGB")
        # The test window (text and flat colours: lossless) is exact; the
        # whole picture is close (the panel changes as sharing starts).
        x, y, w, h = self.canvas_at
        box = (x - 15, y - 60, x + w + 15, y + h + 15)
        self.assertIsNone(ImageChops.difference(picture.crop(box), shown.crop(box)).getbbox())
        difference = ImageStat.Stat(ImageChops.difference(picture, shown)).mean
        self.assertLess(max(difference), 8.0, "the console's picture differs from the display")

        # Control: a click into the entry, then typed text with non-ASCII,
        # Shift and a Ctrl combination.
        x, y = self.canvas_at[0] + 20, self.canvas_at[1] - 30  # the entry is just above the canvas
        for pressed in (True, False):
            await console.send_input(InputEvent("button", x=x, y=y, button="left", pressed=pressed))
        # Xvfb has no window manager to give the clicked window the keyboard focus.
        (probe_window,) = (await agent.xdotool("search", "--onlyvisible", "--class", "^Tk$")).split()[:1]
        await agent.xdotool("windowfocus", "--sync", probe_window)
        for key in ["b", "ü", "€"]:
            await self._tap(console, key)
        await console.send_input(InputEvent("key", key="ctrl_l", pressed=True))
        await self._tap(console, "a")  # Tk's Entry: Ctrl+A goes to the line's start
        await console.send_input(InputEvent("key", key="ctrl_l", pressed=False))
        await console.send_input(InputEvent("key", key="shift", pressed=True))
        await self._tap(console, "A")
        await console.send_input(InputEvent("key", key="shift", pressed=False))
        self.assertEqual(await self.probe.entry_becomes("Abü€"), "Abü€")

        # A file, with its hash checked.
        source = self.mktemp()
        content = support.block(b"agent file", 3 * 1024 * 1024)
        with open(source, "wb") as f:
            f.write(content)
        sent = await console.send_file(source)
        self.assertEqual(sent.outcome, "done")
        with open(os.path.join(agent.receive_directory, os.path.basename(source)), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(content).hexdigest())

        # System information, every field of the right type.
        info = await console.system_info()
        self.assertIsInstance(info, sysinfo.SystemInfo)
        self.assertTrue(info.hostname and info.os and info.memory.total > 0 and info.processes)

        # The customer's shell, and its exit status.
        shell = await console.open_shell(80, 24)
        await agent.screenshot("10-panel-shell")
        await console.shell_input(shell, b"echo shell-$((6*7)); exit 3\n")
        (_, status, signal) = await console_ui.next("shell_exited")
        self.assertEqual((status, signal), (3, None))
        self.assertIn(b"shell-42", b"".join(a[1] for a in console_ui.named("shell_output")))

        # The clipboard reaches the customer's desktop.
        await console.send_clipboard("copied for you ✓")
        self.assertEqual(await self._clipboard(), "copied for you ✓")

        # Control revoked in the panel: nothing reaches the entry any more.
        await agent.keys(panel, "alt+r")
        await console_ui.next("grants_changed", lambda a: a[0] == {})
        with self.assertRaises(sc.NotGranted):
            await self._tap(console, "z")
        self.assertEqual(await self.probe.entry(), "Abü€")
        self.assertEqual(agent.listening_seen, [])

    async def _tap(self, console, key):
        await console.send_input(InputEvent("key", key=key, pressed=True))
        await console.send_input(InputEvent("key", key=key, pressed=False))

    async def _clipboard(self) -> str:
        script = "import tkinter; r = tkinter.Tk(); r.withdraw(); print(r.clipboard_get(), end='')"

        def read():
            import subprocess

            return subprocess.run([sys.executable, "-c", script], env=self.server.environment(),
                                  capture_output=True, text=True, timeout=10).stdout

        for _ in range(50):
            text = await threads.deferToThread(read)
            if text:
                return text
            await agent_driver.deferLater(0.1)
        return ""


class RemoveAfterTests(unittest.TestCase):
    timeout = 60

    async def test_the_downloaded_copy_is_deleted_on_exit(self):
        downloaded = os.path.abspath(self.mktemp())
        with open(downloaded, "w") as f:
            f.write("the downloaded agent")
        self.server = agent_driver.xvfb.start(self)
        gateway = support.RunningGateway(self)
        agent = agent_driver.AgentProgram(self, self.server, gateway, extra=("--remove-after", downloaded))
        window = await agent.window("remote support")
        self.assertEqual(await agent.close_and_wait(window), 0)
        self.assertFalse(os.path.exists(downloaded))
