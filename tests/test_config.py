"""The configuration file: defaults, checks, and the one-line errors."""

import os
import sqlite3

import attrs

from twisted.trial import unittest

from gateway import config as configuration
from gateway.service import make_service
from tests import support

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "etc", "ponte.conf")


class ConfigTests(unittest.TestCase):
    def write(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_sample_is_the_defaults(self):
        """etc/ponte.conf documents every key with its default value."""
        loaded = configuration.load(SAMPLE)
        defaults = configuration.defaults(path=SAMPLE)
        self.assertEqual(loaded, attrs.evolve(defaults, gateway_name="Ponte development gateway"))
        text = open(SAMPLE).read()
        for (section, key) in configuration._KEYS:
            self.assertIn(f"\n{key} =", text, f"[{section}] {key} is not in etc/ponte.conf")

    def test_defaults(self):
        c = configuration.defaults()
        self.assertEqual((c.routing_length, c.secret_length, c.code_validity), (4, 3, 600))
        self.assertEqual((c.attach_deadline, c.retention_days, c.failed_lookups_per_minute), (60, 30, 5))

    def error_of(self, path: str) -> str:
        """The one-line message of loading the configuration at C{path}."""
        with self.assertRaises(configuration.ConfigError) as raised:
            configuration.load(path)
        message = str(raised.exception)
        self.assertNotIn("\n", message)
        return message

    def test_unknown_key(self):
        path = self.write("[codes]\nroutng_length = 5\n")
        self.assertEqual(self.error_of(path), f"{path}: [codes] routng_length is not a known key")

    def test_unknown_section(self):
        self.assertIn("[code] is not a known section", self.error_of(self.write("[code]\nrouting_length = 5\n")))

    def test_wrong_value(self):
        for text, expected in [
            ("[codes]\nvalidity = soon\n", "[codes] validity = 'soon': could not convert"),
            ("[codes]\nrouting_length = 0\n", "[codes] routing_length = '0': must be a whole number above 0"),
            ("[sessions]\ntcp_keepalive = maybe\n", "[sessions] tcp_keepalive = 'maybe': must be on or off"),
            ("[log]\nlevel = loud\n", "[log] level = 'loud': must be one of debug"),
            ("[listen]\nraw = carrier-pigeon:4433\n", "[listen] raw = 'carrier-pigeon:4433': not a Twisted server endpoint"),
        ]:
            self.assertIn(expected, self.error_of(self.write(text)))

    def test_missing_file(self):
        self.assertEqual(
            self.error_of("/nonexistent/ponte.conf"),
            "/nonexistent/ponte.conf: cannot read the configuration: No such file or directory",
        )

    def test_missing_terms_file(self):
        path = self.write("[organisation]\nterms_file = /nonexistent/terms.txt\n")
        self.assertIn("[organisation] terms_file = /nonexistent/terms.txt: No such file", self.error_of(path))

    def test_unreadable_certificate_exits_with_one_line(self):
        state = self.mktemp()
        support.make_state(state)
        path = self.write(
            f"[gateway]\nstate_dir = {state}\n[tls]\ncertificate = {state}/nope.crt\nkey = {state}/tls/gateway.key\n"
        )
        with self.assertRaises(SystemExit) as raised:
            make_service(path)
        self.assertEqual(
            str(raised.exception.code),
            f"ponte: {path}: [tls] certificate = {state}/nope.crt: No such file or directory",
        )

    def test_mismatched_key_exits_with_one_line(self):
        state = self.mktemp()
        layout = support.make_state(state)
        path = self.write(
            f"[gateway]\nstate_dir = {state}\n[tls]\ncertificate = {layout.path('gateway.crt')}\n"
            f"key = {layout.path('ca.key')}\n"
        )
        with self.assertRaises(SystemExit) as raised:
            make_service(path)
        self.assertIn("certificate and key do not load or do not match", str(raised.exception.code))

    def test_newer_database_exits_with_one_line(self):
        state = self.mktemp()
        layout = support.make_state(state)
        connection = sqlite3.connect(f"{state}/ponte.sqlite3", isolation_level=None)
        connection.execute("PRAGMA user_version = 999")
        connection.close()
        path = self.write(
            f"[gateway]\nstate_dir = {state}\n[tls]\ncertificate = {layout.path('gateway.crt')}\n"
            f"key = {layout.path('gateway.key')}\n"
        )
        with self.assertRaises(SystemExit) as raised:
            make_service(path)
        self.assertIn("schema version 999, newer than this program", str(raised.exception.code))
        self.assertNotIn("\n", str(raised.exception.code))

    def test_missing_state_directory(self):
        path = self.write("[gateway]\nstate_dir = /nonexistent/state\n")
        with self.assertRaises(SystemExit) as raised:
            make_service(path)
        self.assertIn("no such directory (run `ponte-admin init` first)", str(raised.exception.code))
