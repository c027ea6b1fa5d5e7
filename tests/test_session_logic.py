"""
The pure parts of the session: code confirmation, grants on a clock, the
large-value argument, system information, input events and the gate that
refuses session commands before the code is confirmed.
"""

import os

from twisted.internet import task
from twisted.protocols import amp
from twisted.trial import unittest

from agent.grants import Grants
from wire import confirm, sysinfo
from wire import session_commands as sc
from wire.e2e import _Gate
from wire.screen import InputEvent

CODE = "K7QM4XZ"
EXPORTER = b"e" * 32


def _run(agent_code=CODE, console_code=CODE, agent_exporter=EXPORTER, console_exporter=EXPORTER):
    agent = confirm.Confirmation(confirm.AGENT, agent_code, agent_exporter)
    console = confirm.Confirmation(confirm.CONSOLE, console_code, console_exporter)
    to_console, to_agent = agent.start(), console.start()
    agent.finish(to_agent)
    console.finish(to_console)
    return agent, console


class ConfirmationTests(unittest.TestCase):
    def test_same_code_same_channel_confirms_both_ways(self):
        agent, console = _run()
        console.check(*agent.proof())
        agent.check(*console.proof())

    def test_a_different_code_is_a_code_mismatch(self):
        agent, console = _run(console_code="K7QM4XY")
        self.assertRaises(confirm.CodeMismatch, console.check, *agent.proof())
        self.assertRaises(confirm.CodeMismatch, agent.check, *console.proof())

    def test_a_different_channel_is_a_channel_mismatch(self):
        agent, console = _run(console_exporter=b"f" * 32)
        self.assertRaises(confirm.ChannelMismatch, console.check, *agent.proof())

    def test_a_reflected_proof_is_refused(self):
        agent, console = _run()
        self.assertRaises(confirm.ConfirmationFailed, agent.check, *agent.proof())

    def test_a_malformed_message_is_a_code_mismatch(self):
        agent = confirm.Confirmation(confirm.AGENT, CODE, EXPORTER)
        agent.start()
        self.assertRaises(confirm.CodeMismatch, agent.finish, b"\x00" * 5)

    def test_a_reflected_message_is_refused(self):
        agent = confirm.Confirmation(confirm.AGENT, CODE, EXPORTER)
        mine = agent.start()
        self.assertRaises(confirm.CodeMismatch, agent.finish, mine)


class GrantsTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.changes = []
        self.grants = Grants(self.clock, self.changes.append)

    def test_grant_and_revoke(self):
        self.grants.grant([sc.VIEW, sc.CONTROL])
        self.assertTrue(self.grants.allowed(sc.CONTROL))
        self.grants.revoke(sc.CONTROL)
        self.assertFalse(self.grants.allowed(sc.CONTROL))
        self.assertTrue(self.grants.allowed(sc.VIEW))
        self.assertEqual(self.changes, ["granted view, control", "control revoked by the customer"])

    def test_a_time_limited_grant_runs_out(self):
        self.grants.grant([sc.SHELL], duration=60)
        self.assertEqual(self.grants.current(), {sc.SHELL: 60.0})
        self.clock.advance(59)
        self.assertTrue(self.grants.allowed(sc.SHELL))
        self.clock.advance(1)
        self.assertFalse(self.grants.allowed(sc.SHELL))
        self.assertEqual(self.changes[-1], "shell ran out")
        self.assertEqual([e.what for e in self.grants.history], ["granted", "expired"])

    def test_granting_again_replaces_the_time_limit(self):
        self.grants.grant([sc.SHELL], duration=10)
        self.grants.grant([sc.SHELL])
        self.clock.advance(3600)
        self.assertTrue(self.grants.allowed(sc.SHELL))

    def test_revoke_all_and_unknown_scopes(self):
        self.grants.grant([sc.VIEW, "root", sc.CLIPBOARD])
        self.assertEqual(set(self.grants.current()), {sc.VIEW, sc.CLIPBOARD})
        self.grants.revoke_all()
        self.assertEqual(self.grants.current(), {})
        self.grants.revoke(sc.VIEW)
        self.assertEqual(len(self.changes), 2)

    def test_stop_cancels_the_timers(self):
        self.grants.grant([sc.SHELL], duration=10)
        self.grants.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class BigJSONTests(unittest.TestCase):
    def _round_trip(self, value):
        argument = sc.BigJSON()
        strings = {}
        argument.toBox(b"info", strings, {"info": value}, None)
        objects = {}
        argument.fromBox(b"info", strings, objects, None)
        return strings, objects["info"]

    def test_a_value_larger_than_one_amp_value(self):
        value = {"lines": [f"{i} {'x' * i}" for i in range(600)], "noise": os.urandom(100000).hex()}
        strings, back = self._round_trip(value)
        self.assertGreater(len(strings), 2)
        self.assertTrue(all(len(v) <= 65535 for v in strings.values()))
        self.assertEqual(back, value)

    def test_too_large(self):
        argument = sc.BigJSON(limit=1000)
        self.assertRaises(sc.BadRequest, argument.toBox, b"info", {}, {"info": os.urandom(2000).hex()}, None)

    def test_malformed(self):
        argument = sc.BigJSON()
        for strings in ({b"info": b"2", b"info.0": b"x"}, {b"info": b"1", b"info.0": b"not zlib"}, {b"info": b"-1"}, {}):
            self.assertRaises(sc.BadRequest, argument.fromBox, b"info", strings, {}, None)

    def test_a_decompression_bomb_is_refused(self):
        import zlib

        argument = sc.BigJSON(limit=1000)
        bomb = zlib.compress(b"[" + b"0," * 100000 + b"0]")
        self.assertLess(len(bomb), 1000)
        self.assertRaises(sc.BadRequest, argument.fromBox, b"info", {b"info": b"1", b"info.0": bomb}, {}, None)


class SystemInfoTests(unittest.TestCase):
    def test_round_trip(self):
        info = sysinfo.SystemInfo(
            os="Linux", hostname="pc", cpu=sysinfo.Cpu("x", 4, 12.5),
            disks=(sysinfo.Disk("/", "/dev/sda1", "ext4", 100, 50),),
            interfaces=(sysinfo.NetworkInterface("eth0", ("10.0.0.2",), True),),
            log_lines=("a", "b"),
        )
        self.assertEqual(sysinfo.from_json(sysinfo.to_json(info)), info)

    def test_unknown_keys_are_ignored_and_missing_ones_default(self):
        info = sysinfo.from_json({"hostname": "pc", "future": 1, "cpu": {"cores": 2}})
        self.assertEqual((info.hostname, info.cpu.cores, info.os), ("pc", 2, ""))

    def test_wrong_types_are_named(self):
        with self.assertRaises(sysinfo.MalformedSystemInfo) as caught:
            sysinfo.from_json({"disks": [{"total": "big"}]})
        self.assertIn("info.disks[0].total", str(caught.exception))
        self.assertRaises(sysinfo.MalformedSystemInfo, sysinfo.from_json, [])
        self.assertRaises(sysinfo.MalformedSystemInfo, sysinfo.from_json, {"cpu": {"cores": True}})


class InputEventTests(unittest.TestCase):
    def test_well_formed(self):
        for event in (
            InputEvent("move", x=1, y=2),
            InputEvent("button", x=1, y=2, button="right", pressed=False),
            InputEvent("wheel", dx=0, dy=-3),
            InputEvent("key", key="é", pressed=True),
            InputEvent("key", key="ctrl_l", pressed=True),
        ):
            self.assertIsNone(event.problem(), event)

    def test_malformed(self):
        for event in (
            InputEvent("jump"),
            InputEvent("move", x=1),
            InputEvent("button", x=1, y=1, button="fourth", pressed=True),
            InputEvent("key", key="", pressed=True),
            InputEvent("key", key="x" * 40, pressed=True),
        ):
            self.assertIsNotNone(event.problem(), event)


class _Core(amp.CommandLocator):
    verified = False

    def accepts(self, command):
        return self.verified or command in (sc.Pake.commandName, sc.Confirm.commandName)

    @sc.Chat.responder
    def chat(self, text, sent_at):
        return {}


class GateTests(unittest.TestCase):
    def _answer(self, core, command, **arguments):
        box = amp.AmpBox(command.makeArguments(arguments, None))
        responder = _Gate(core).locateResponder(command.commandName)
        return responder(box)

    def test_session_commands_wait_for_the_confirmation(self):
        core = _Core()
        failure = self.failureResultOf(self._answer(core, sc.Chat, text="hi", sent_at=0.0))
        self.assertEqual(failure.value.errorCode, b"NOT_VERIFIED")
        core.verified = True
        self.successResultOf(self._answer(core, sc.Chat, text="hi", sent_at=0.0))

    def test_confirmation_commands_pass_and_unknown_ones_are_unhandled(self):
        core = _Core()
        self.assertIsNone(_Gate(core).locateResponder(sc.Pake.commandName))
        core.verified = True
        self.assertIsNone(_Gate(core).locateResponder(b"Bogus"))
