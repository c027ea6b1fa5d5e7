"""
Authenticator codes (RFC 6238) and the gateway's login with a second
factor and a forced password change, in memory on a test clock.
"""

import urllib.parse

import attrs
from twisted.trial import unittest

from gateway import records, totp
from gateway.passwords import verify_password
from tests import support
from tests.test_protocol import Harness
from wire import commands

# RFC 6238, appendix B: the SHA-1 seed, and (time, 8-digit code) pairs.
RFC_SECRET = b"12345678901234567890"
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


class CodeTests(unittest.TestCase):
    def test_rfc_6238_vectors(self):
        settings = totp.TotpSettings(digits=8)
        for now, expected in RFC_VECTORS:
            self.assertEqual(totp.code_at(RFC_SECRET, totp.step_at(now), settings), expected, now)

    def test_six_digits_are_the_last_six(self):
        self.assertEqual(totp.code_at(RFC_SECRET, totp.step_at(59)), "287082")

    def test_drift_window(self):
        now = 1_800_000_000.0
        step = totp.step_at(now)
        code = totp.code_at(RFC_SECRET, step - 1)
        self.assertEqual(totp.matching_step(RFC_SECRET, code, now), step - 1)
        self.assertIsNone(totp.matching_step(RFC_SECRET, code, now, totp.TotpSettings(window=0)))
        too_old = totp.code_at(RFC_SECRET, step - 2)
        self.assertIsNone(totp.matching_step(RFC_SECRET, too_old, now))

    def test_typing_is_forgiven_but_garbage_is_not(self):
        now = 1_800_000_000.0
        code = totp.code_at(RFC_SECRET, totp.step_at(now))
        self.assertIsNotNone(totp.matching_step(RFC_SECRET, f" {code[:3]} {code[3:]} ", now))
        self.assertIsNone(totp.matching_step(RFC_SECRET, "ünïcødé", now))
        self.assertIsNone(totp.matching_step(RFC_SECRET, "", now))

    def test_provisioning_uri(self):
        uri = totp.provisioning_uri(RFC_SECRET, "alice", "Test Org")
        parsed = urllib.parse.urlsplit(uri)
        self.assertEqual((parsed.scheme, parsed.netloc), ("otpauth", "totp"))
        self.assertEqual(urllib.parse.unquote(parsed.path), "/Test Org:alice")
        query = dict(urllib.parse.parse_qsl(parsed.query))
        self.assertEqual(query["secret"], "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        self.assertEqual((query["issuer"], query["digits"], query["period"]), ("Test Org", "6", "30"))


class AccountSecretTests(unittest.TestCase):
    def test_sealed_for_one_account(self):
        key = records.TranscriptKey.create(self.mktemp())
        sealed = key.seal_secret("alice", RFC_SECRET)
        self.assertNotIn(RFC_SECRET, sealed)
        self.assertEqual(key.open_secret("alice", sealed), RFC_SECRET)
        self.assertRaises(records.TranscriptKeyError, key.open_secret, "bob", sealed)
        other = records.TranscriptKey.create(self.mktemp())
        self.assertRaises(records.TranscriptKeyError, other.open_secret, "alice", sealed)


class LoginHarness(Harness):
    """The protocol harness with a sealing key, and helpers to enrol and log in."""

    def __init__(self, testcase):
        key_path = testcase.mktemp()
        super().__init__(testcase, transcript_key_file=key_path)
        self.key = records.TranscriptKey.create(key_path)

    def enrol(self, username="alice") -> bytes:
        secret = totp.new_secret()
        operator = self.store.operators[username]
        self.store.operators[username] = attrs.evolve(
            operator, totp_sealed=self.key.seal_secret(username, secret), totp_last_step=0)
        return secret

    def must_change(self, username="alice"):
        self.store.operators[username] = attrs.evolve(self.store.operators[username], must_change_password=True)

    def login(self, **arguments):
        c = self.hello(commands.ROLE_OPERATOR)
        d = self.call(c, commands.Login, **{"username": "alice", "password": support.PASSWORD, **arguments})
        self.testcase.addCleanup(d.addErrback, lambda f: None)
        return d

    def code(self, secret, steps=0):
        return totp.code_at(secret, totp.step_at(self.clock.seconds()) + steps)


class SecondFactorTests(unittest.TestCase):
    def setUp(self):
        self.h = LoginHarness(self)
        self.secret = self.h.enrol()

    def test_code_needed_only_after_the_right_password(self):
        self.failureResultOf(self.h.login(password="nope"), commands.AuthenticationFailed)
        message = str(self.failureResultOf(self.h.login(), commands.TotpRequired).value)
        self.assertIn("authenticator app", message)

    def test_right_code_logs_in(self):
        answer = self.successResultOf(self.h.login(totp=self.h.code(self.secret)))
        self.assertEqual(answer["display_name"], "Alice Agostini")
        self.assertEqual(self.h.store.kinds().count("login"), 1)

    def test_wrong_code_refused_and_counted(self):
        wrong = "000000" if self.h.code(self.secret) != "000000" else "111111"
        message = str(self.failureResultOf(self.h.login(totp=wrong), commands.WrongTotp).value)
        self.assertEqual(message, "wrong authenticator code")
        for _ in range(5):
            self.h.login(totp=wrong)
        self.failureResultOf(self.h.login(totp=self.h.code(self.secret)), commands.RateLimited)

    def test_a_code_is_used_once(self):
        code = self.h.code(self.secret)
        self.successResultOf(self.h.login(totp=code))
        message = str(self.failureResultOf(self.h.login(totp=code), commands.WrongTotp).value)
        self.assertIn("used already", message)
        # Nor an older one, still in the window.
        self.failureResultOf(self.h.login(totp=self.h.code(self.secret, -1)), commands.WrongTotp)
        self.h.clock.advance(30)
        self.successResultOf(self.h.login(totp=self.h.code(self.secret)))

    def test_clock_drift_of_one_step(self):
        self.successResultOf(self.h.login(totp=self.h.code(self.secret, 1)))
        self.h.clock.advance(90)
        self.failureResultOf(self.h.login(totp=self.h.code(self.secret, -2)), commands.WrongTotp)

    def test_secret_sealed_for_another_account_does_not_work(self):
        self.h.store.operators["alice"] = attrs.evolve(
            self.h.store.operators["alice"], totp_sealed=self.h.key.seal_secret("bob", self.secret))
        self.failureResultOf(self.h.login(totp=self.h.code(self.secret)), commands.Busy)

    def test_code_never_logged(self):
        code = self.h.code(self.secret)
        from twisted.logger import globalLogPublisher
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.successResultOf(self.h.login(totp=code))
        self.assertNotIn(code, repr(logged) + repr(self.h.store.event_rows))


class PasswordChangeTests(unittest.TestCase):
    NEW = "a brand new passphrase"

    def setUp(self):
        self.h = LoginHarness(self)

    def test_forced_change_refuses_login_until_changed(self):
        self.h.must_change()
        message = str(self.failureResultOf(self.h.login(), commands.PasswordChangeRequired).value)
        self.assertIn("new password", message)
        self.successResultOf(self.h.login(new_password=self.NEW))
        operator = self.h.store.operators["alice"]
        self.assertFalse(operator.must_change_password)
        self.assertTrue(verify_password(operator.password_hash, self.NEW))
        self.failureResultOf(self.h.login(), commands.AuthenticationFailed)
        self.successResultOf(self.h.login(password=self.NEW))
        self.assertIn("password-changed", self.h.store.kinds())

    def test_weak_or_same_password_refused_and_nothing_changed(self):
        self.h.must_change()
        before = self.h.store.operators["alice"].password_hash
        short = str(self.failureResultOf(self.h.login(new_password="short"), commands.WeakPassword).value)
        self.assertEqual(short, "a password needs at least 12 characters")
        same = str(self.failureResultOf(self.h.login(new_password=support.PASSWORD), commands.WeakPassword).value)
        self.assertEqual(same, "the new password must differ from the old one")
        self.assertEqual(self.h.store.operators["alice"].password_hash, before)
        self.assertTrue(self.h.store.operators["alice"].must_change_password)

    def test_change_needs_the_old_password_and_the_code(self):
        self.h.must_change()
        secret = self.h.enrol()
        self.failureResultOf(self.h.login(password="nope", new_password=self.NEW), commands.AuthenticationFailed)
        self.failureResultOf(self.h.login(new_password=self.NEW), commands.TotpRequired)
        self.successResultOf(self.h.login(new_password=self.NEW, totp=self.h.code(secret)))
        self.assertTrue(verify_password(self.h.store.operators["alice"].password_hash, self.NEW))

    def test_refusals_before_the_code_do_not_use_it_up(self):
        self.h.must_change()
        secret = self.h.enrol()
        code = self.h.code(secret)
        self.failureResultOf(self.h.login(totp=code), commands.PasswordChangeRequired)
        self.failureResultOf(self.h.login(totp=code, new_password="short"), commands.WeakPassword)
        self.successResultOf(self.h.login(totp=code, new_password=self.NEW))

    def test_voluntary_change(self):
        self.successResultOf(self.h.login(new_password=self.NEW))
        self.successResultOf(self.h.login(password=self.NEW))
