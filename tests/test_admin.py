"""ponte-admin: init and operator accounts, on a temporary state directory."""

import base64
import io
import os
import stat

from twisted.trial import unittest

from gateway import admin, passwords, records

GOOD = "a long enough passphrase"


class AdminTests(unittest.TestCase):
    def setUp(self):
        self.state = self.mktemp()

    def run_admin(self, *argv, expect=0):
        out, err = io.StringIO(), io.StringIO()
        self.patch(admin.sys, "stderr", err)
        status = admin.main(["--state", self.state, *argv], out=out)
        self.assertEqual(status, expect, err.getvalue())
        return out.getvalue() + err.getvalue()

    def password_file(self, password=GOOD):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(password + "\n")
        return path

    def operator(self, name):
        connection = records.open_database(os.path.join(self.state, "ponte.sqlite3"))
        self.addCleanup(connection.close)
        return records.get_operator(connection.cursor(), name)

    def test_init(self):
        """Keys (0600), certificates, database and a first admin whose password works."""
        output = self.run_admin("init")
        self.assertIn("first admin account: admin", output)
        password = output.split("asks for a new one): ")[1].strip()
        tls = os.path.join(self.state, "tls")
        for name in ("ca.key", "gateway.key", "operator-ca.key", "agent-signing.key"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(tls, name)).st_mode), 0o600, name)
        for name in ("ca.crt", "gateway.crt", "operator-ca.crt", "agent-signing.pub"):
            self.assertTrue(os.path.exists(os.path.join(tls, name)), name)
        database = os.path.join(self.state, "ponte.sqlite3")
        self.assertEqual(stat.S_IMODE(os.stat(database).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o700)
        admin_account = self.operator("admin")
        self.assertTrue(admin_account.is_admin)
        self.assertTrue(admin_account.must_change_password)
        self.assertTrue(passwords.verify_password(admin_account.password_hash, password))

    def test_init_refuses_to_replace_keys(self):
        self.run_admin("init")
        before = open(os.path.join(self.state, "tls", "ca.key")).read()
        output = self.run_admin("init", expect=1)
        self.assertIn("keys exist already", output)
        self.assertIn("use --force", output)
        self.assertEqual(open(os.path.join(self.state, "tls", "ca.key")).read(), before)
        output = self.run_admin("init", "--force")
        self.assertIn("operators exist already: no first admin made", output)
        self.assertNotEqual(open(os.path.join(self.state, "tls", "ca.key")).read(), before)

    def test_user_lifecycle(self):
        self.run_admin("init")
        self.run_admin("user", "add", "dana", "--display-name", "Dana D.", "--password-file", self.password_file())
        self.assertTrue(passwords.verify_password(self.operator("dana").password_hash, GOOD))
        listing = self.run_admin("user", "list")
        self.assertRegex(listing, r"dana\s+Dana D\.\s+no\s+active")
        self.run_admin("user", "disable", "dana")
        self.assertTrue(self.operator("dana").disabled)
        self.assertRegex(self.run_admin("user", "list"), r"dana\s+Dana D\.\s+no\s+disabled")
        self.run_admin("user", "enable", "dana")
        self.assertFalse(self.operator("dana").disabled)
        self.run_admin("user", "passwd", "dana", "--password-file", self.password_file("another fine passphrase"))
        self.assertTrue(passwords.verify_password(self.operator("dana").password_hash, "another fine passphrase"))

    def test_temporary_passwords(self):
        self.run_admin("init")
        self.run_admin("user", "add", "dana", "--temporary", "--password-file", self.password_file())
        self.assertTrue(self.operator("dana").must_change_password)
        self.assertRegex(self.run_admin("user", "list"), r"dana\s+dana\s+no\s+change")
        self.run_admin("user", "passwd", "dana", "--password-file", self.password_file())
        self.assertFalse(self.operator("dana").must_change_password)
        self.run_admin("user", "passwd", "dana", "--temporary", "--password-file", self.password_file())
        self.assertTrue(self.operator("dana").must_change_password)

    def test_recording_policy(self):
        self.run_admin("init")
        self.run_admin("user", "add", "dana", "--record", "--password-file", self.password_file())
        self.assertTrue(self.operator("dana").must_record)
        self.assertRegex(self.run_admin("user", "list"), r"dana\s+dana\s+no\s+active\s+no\s+yes")
        self.assertIn("recording is now the choice of dana", self.run_admin("user", "record", "dana", "off"))
        self.assertFalse(self.operator("dana").must_record)
        self.run_admin("user", "record", "dana", "on")
        self.assertTrue(self.operator("dana").must_record)

    def test_totp_enrolment(self):
        self.run_admin("init")
        self.run_admin("user", "add", "dana", "--password-file", self.password_file())
        output = self.run_admin("user", "totp", "dana")
        key_text = output.split("key: ")[1].split()[0]
        self.assertIn("otpauth://totp/Ponte:dana?secret=" + key_text, output)
        dana = self.operator("dana")
        self.assertTrue(dana.has_totp)
        self.assertRegex(self.run_admin("user", "list"), r"dana\s+dana\s+no\s+active\s+yes")
        # Sealed with the state directory's key: not in the database in the clear.
        secret = base64.b32decode(key_text + "=" * (-len(key_text) % 8))
        self.assertNotIn(secret, dana.totp_sealed)
        key = records.TranscriptKey.load(os.path.join(self.state, "transcripts.key"))
        self.assertEqual(key.open_secret("dana", dana.totp_sealed), secret)
        self.assertIn("has an authenticator already; --replace", self.run_admin("user", "totp", "dana", expect=1))
        replaced = self.run_admin("user", "totp", "dana", "--replace")
        self.assertNotIn(key_text, replaced)
        self.run_admin("user", "totp", "dana", "--remove")
        self.assertFalse(self.operator("dana").has_totp)
        self.assertIn("no operator called 'erin'", self.run_admin("user", "totp", "erin", expect=1))

    def test_password_hash_is_argon2id(self):
        self.run_admin("init")
        self.run_admin("user", "add", "dana", "--password-file", self.password_file())
        encoded = self.operator("dana").password_hash
        self.assertTrue(encoded.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), encoded)
        self.assertNotIn(GOOD, encoded)

    def test_errors(self):
        self.assertIn("does not exist: run `ponte-admin init` first", self.run_admin("user", "list", expect=1))
        self.run_admin("init")
        self.assertIn("at least 12 characters", self.run_admin(
            "user", "add", "dana", "--password-file", self.password_file("short"), expect=1
        ))
        self.run_admin("user", "add", "dana", "--password-file", self.password_file())
        self.assertIn("exists already", self.run_admin(
            "user", "add", "dana", "--password-file", self.password_file(), expect=1
        ))
        self.assertIn("no operator called 'erin'", self.run_admin("user", "disable", "erin", expect=1))
        self.assertIn("No such file", self.run_admin(
            "user", "add", "erin", "--password-file", "/nonexistent", expect=1
        ))

    def test_no_terminal_for_a_password_prompt(self):
        self.run_admin("init")
        self.patch(admin.sys.stdin, "isatty", lambda: False)
        self.assertIn("use --password-file", self.run_admin("user", "add", "dana", expect=1))
