"""
The customer's journey with the real C{ponte-agent} program on a private
Xvfb, against a test gateway and an operator's console core in the test:
code entry, terms, the panel, consent, revoke, chat, end, the summary and
the exit.  Screenshots of each window are saved (see L{agent_driver}).
"""

import os
import time

from twisted.trial import unittest

from tests import agent_driver, support, xvfb
from wire import session_commands as sc


class JourneyTests(unittest.TestCase):
    timeout = 120

    async def test_the_whole_journey(self):
        agent, panel, console, console_ui = await agent_driver.to_panel(self)

        # Consent: the operator asks, the customer allows in the panel.
        asking = console.request_consent([sc.VIEW, sc.CONTROL])
        await agent_driver.deferLater(0.5)
        await agent.screenshot("4-consent-prompt")
        await agent.keys(panel, "alt+a")
        answer = await asking
        self.assertEqual(sorted(answer["granted"]), [sc.CONTROL, sc.VIEW])
        await console.send_chat("Hello, I can see the problem now.")
        await agent.screenshot("5-panel-granted-chat")

        # Revoke everything from the panel: the console is told at once.
        await agent.keys(panel, "alt+r")
        await console_ui.next("grants_changed", lambda a: a[0] == {})
        with self.assertRaises(sc.NotGranted):
            await console.channel.callRemote(sc.Input, kind="move", x=1, y=1)

        # End from the panel: the console is told; the summary shows.
        await agent.keys(panel, "alt+e")
        (reason,) = await console_ui.next("ended")
        self.assertIn("customer ended", reason)
        summary = await agent.window("session ended")
        await agent.screenshot("6-summary")
        await agent.keys(summary, "4", "alt+c")
        closed = time.monotonic()
        status = await agent.exit.ended
        self.assertLess(agent.exit.ended_at - closed, 1.0)
        self.assertEqual(status, 0)
        self.assertEqual(agent.listening_seen, [])
        # The local log has the events, never the chat or the code.
        with open(os.path.join(agent.home, "state", "ponte", "agent.log"), encoding="utf-8") as f:
            log = f.read()
        self.assertIn("verified", log)
        self.assertNotIn("I can see the problem", log)
        self.assertNotIn(agent.code, log)

    async def test_closing_the_panel_ends_the_session(self):
        agent, panel, console, console_ui = await agent_driver.to_panel(self)
        await agent.close(panel)
        (reason,) = await console_ui.next("ended")
        self.assertIn("closed the panel", reason)
        summary = await agent.window("session ended")
        await agent.keys(summary, "alt+c")
        self.assertEqual(await agent.exit.ended, 0)

    async def test_killing_the_panel_ends_the_session_and_the_process(self):
        agent, panel, console, console_ui = await agent_driver.to_panel(self)
        killed = time.monotonic()
        await agent.xdotool("windowkill", panel)
        await agent.exit.ended
        self.assertLess(agent.exit.ended_at - killed, 1.0)
        await console_ui.next("ended")

    async def test_a_wrong_code_is_explained(self):
        self.server = xvfb.start(self)
        gateway = support.RunningGateway(self)
        agent = agent_driver.AgentProgram(self, self.server, gateway)
        window = await agent.window("remote support")
        await agent.type(window, "ZZZZ999")
        await agent.keys(window, "Return")
        await agent_driver.deferLater(1.0)
        await agent.screenshot("7-unknown-code")
        self.assertEqual(await agent.close_and_wait(window), 0)
        self.assertEqual(agent.listening_seen, [])

    async def test_stopping_the_program_tells_the_operator(self):
        agent, panel, console, console_ui = await agent_driver.to_panel(self)
        agent.process.signalProcess("TERM")
        self.assertEqual(await agent.exit.ended, 0)
        (reason,) = await console_ui.next("ended")
        self.assertIn("customer", reason)
