"""
Operator certificates issued at login: the issuing function, the
switchboard's use of it, the configuration, operator groups and their
migration, and one login over a real gateway.
"""

import datetime
import io
import os
import sqlite3

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway import admin, pki, records, schema
from gateway import config as configuration
from gateway.passwords import verify_password
from gateway.service import make_service
from gateway.switchboard import Peer, Switchboard
from tests import support
from wire import commands, identity

NOW = datetime.datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
EIGHT_HOURS = datetime.timedelta(hours=8)


def _request(key, subject="alice", algorithm=hashes.SHA256()) -> bytes:
    """A PEM certificate request for C{key}."""
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.USER_ID, subject)]))
        .sign(key, algorithm)
    )
    return request.public_bytes(serialization.Encoding.PEM)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_element(der: bytes, at: int) -> int:
    """The end of the DER element that starts at C{at}."""
    first = der[at + 1]
    if first < 0x80:
        return at + 2 + first
    count = first & 0x7F
    length = int.from_bytes(der[at + 2 : at + 2 + count], "big")
    return at + 2 + count + length


def request_signed_by_another_key() -> bytes:
    """
    A well-formed PEM certificate request that contains one key but is
    signed by another (as someone without the private key would send).
    """
    contained = ec.generate_private_key(ec.SECP256R1())
    signer = ec.generate_private_key(ec.SECP256R1())
    request = x509.load_pem_x509_csr(_request(contained))
    der = request.public_bytes(serialization.Encoding.DER)
    tbs = request.tbs_certrequest_bytes
    # CertificationRequest ::= SEQUENCE { info, signature algorithm, signature }
    start = der.index(tbs)
    algorithm_end = _der_element(der, start + len(tbs))
    algorithm = der[start + len(tbs) : algorithm_end]
    signature = signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    bits = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bits
    forged = b"\x30" + _der_length(len(body)) + body
    return x509.load_der_x509_csr(forged).public_bytes(serialization.Encoding.PEM)


class OperatorCA:
    """An operator CA made once for the pure tests."""

    certificate, key = pki.make_ca("Test operator CA", "Test Org")


def issue(request_pem, **overrides):
    arguments = dict(
        username="alice",
        display_name="Alice Agostini",
        organisation="Test Org",
        group="Support",
        lifetime=EIGHT_HOURS,
        now=NOW,
    )
    arguments.update(overrides)
    return pki.issue_operator_certificate(
        request_pem, OperatorCA.certificate, OperatorCA.key, **arguments
    )


class IssueTests(unittest.TestCase):
    """L{pki.issue_operator_certificate}, without any I/O."""

    def test_certificate(self):
        made = identity.make_request("alice")
        certificate = issue(made.request_pem)
        certificate.verify_directly_issued_by(OperatorCA.certificate)
        self.assertEqual(certificate.public_key(), made.key.public_key())
        self.assertEqual(
            certificate.subject, identity.operator_subject("alice", "Alice Agostini", "Test Org", "Support")
        )
        self.assertEqual(certificate.issuer, OperatorCA.certificate.subject)
        self.assertEqual(
            identity.read_identity(certificate),
            identity.OperatorIdentity(
                "alice", "Alice Agostini", "Test Org", "Support", NOW.replace(microsecond=0) + EIGHT_HOURS
            ),
        )

    def test_validity(self):
        certificate = issue(identity.make_request("alice").request_pem)
        now = NOW.replace(microsecond=0)
        self.assertEqual(certificate.not_valid_before_utc, now - datetime.timedelta(minutes=1))
        self.assertEqual(certificate.not_valid_after_utc, now + EIGHT_HOURS)
        short = issue(
            identity.make_request("alice").request_pem, lifetime=datetime.timedelta(minutes=90)
        )
        self.assertEqual(short.not_valid_after_utc, now + datetime.timedelta(minutes=90))

    def test_extensions(self):
        certificate = issue(identity.make_request("alice").request_pem)
        extensions = certificate.extensions
        basic = extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(basic.critical)
        self.assertFalse(basic.value.ca)
        usage = extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(usage.critical)
        self.assertTrue(usage.value.digital_signature)
        self.assertFalse(usage.value.key_cert_sign)
        self.assertFalse(usage.value.key_encipherment)
        self.assertEqual(
            list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value),
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        )
        authority = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ca_key_id = OperatorCA.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        self.assertEqual(authority.key_identifier, ca_key_id.value.digest)
        self.assertEqual(certificate.version, x509.Version.v3)

    def test_request_subject_is_ignored(self):
        request = _request(ec.generate_private_key(ec.SECP256R1()), subject="mallory")
        certificate = issue(request)
        self.assertEqual(identity.read_identity(certificate).username, "alice")
        self.assertNotIn("mallory", certificate.subject.rfc4514_string())

    def test_no_group(self):
        certificate = issue(identity.make_request("alice").request_pem, group="")
        self.assertEqual(certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME), [])
        self.assertEqual(identity.read_identity(certificate).group, "")

    def test_random_serials(self):
        request = identity.make_request("alice").request_pem
        serials = {issue(request).serial_number for _ in range(5)}
        self.assertEqual(len(serials), 5)
        self.assertTrue(all(s.bit_length() > 64 for s in serials))

    def test_accepted_keys(self):
        for key in (
            ec.generate_private_key(ec.SECP384R1()),
            ed25519.Ed25519PrivateKey.generate(),
        ):
            algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA384()
            certificate = issue(_request(key, algorithm=algorithm))
            certificate.verify_directly_issued_by(OperatorCA.certificate)
            self.assertEqual(certificate.public_key(), key.public_key())

    def refused(self, request_pem, expected: str):
        with self.assertRaises(pki.BadCertificateRequest) as raised:
            issue(request_pem)
        self.assertIsInstance(raised.exception, ValueError)
        self.assertIn(expected, str(raised.exception))
        self.assertNotIn("\n", str(raised.exception))

    def test_not_pem(self):
        self.refused(b"", "not PEM")
        self.refused(b"hello", "not PEM")
        der = x509.load_pem_x509_csr(identity.make_request("alice").request_pem).public_bytes(
            serialization.Encoding.DER
        )
        self.refused(der, "not PEM")
        self.refused("-----BEGIN CERTIFICATE REQUEST-----", "not PEM")

    def test_malformed(self):
        self.refused(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "malformed",
        )
        # A certificate is not a certificate request.
        self.refused(pki.certificate_pem(OperatorCA.certificate), "malformed")

    def test_signed_by_another_key(self):
        forged = request_signed_by_another_key()
        # It is well-formed, and its signature is just not by its own key.
        request = x509.load_pem_x509_csr(forged)
        with self.assertRaises(InvalidSignature):
            request.public_key().verify(
                request.signature, request.tbs_certrequest_bytes, ec.ECDSA(hashes.SHA256())
            )
        self.refused(forged, "signature does not verify")

    def test_tampered_request(self):
        pem = identity.make_request("alice").request_pem
        der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
        der[-5] ^= 0x01  # inside the signature
        try:
            tampered = x509.load_der_x509_csr(bytes(der))
        except ValueError:
            self.skipTest("the flipped bit broke the signature's DER")
        self.refused(tampered.public_bytes(serialization.Encoding.PEM), "signature does not verify")

    def test_refused_keys(self):
        p521 = ec.generate_private_key(ec.SECP521R1())
        self.refused(_request(p521, algorithm=hashes.SHA512()), "secp521r1")
        self.refused(_request(rsa.generate_private_key(65537, 2048)), "RSA")


class OperatorCALoadingTests(unittest.TestCase):
    def test_load_from_layout(self):
        layout = support.make_state(self.mktemp(), operators=())
        ca = pki.load_operator_ca(layout)
        with open(layout.path(layout.operator_ca_certificate), "rb") as f:
            self.assertEqual(ca.certificate, x509.load_pem_x509_certificate(f.read()))
        self.assertEqual(ca.key.public_key(), ca.certificate.public_key())
        self.assertNotIn("PRIVATE", repr(ca))

    def test_mismatched_key(self):
        other_key = ec.generate_private_key(ec.SECP256R1())
        with self.assertRaises(ValueError):
            pki.parse_operator_ca(pki.certificate_pem(OperatorCA.certificate), pki.key_pem(other_key))


class SwitchboardTests(unittest.TestCase):
    """The switchboard issues certificates at login (in memory, test clock)."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_800_000_000.25)
        self.store = support.MemoryStore(
            [
                support.operator_record(group="Support"),
                support.operator_record("bob", "B" * 65),
            ]
        )
        self.ca = pki.OperatorCA(OperatorCA.certificate, OperatorCA.key)
        self.switchboard = self.make(operator_certificate_lifetime=2.5)

    def make(self, operator_ca=True, **overrides):
        return Switchboard(
            configuration.defaults(organisation="Test Org", **overrides),
            self.clock,
            self.store,
            check_password=lambda encoded, password: defer.succeed(verify_password(encoded, password)),
            operator_ca=self.ca if operator_ca else None,
        )

    def login(self, request, password=support.PASSWORD, username="alice", switchboard=None):
        peer = Peer("203.0.113.7", role=commands.ROLE_OPERATOR, events=lambda *a, **k: None)
        switchboard = switchboard or self.switchboard
        d = defer.ensureDeferred(switchboard.login(peer, username, password, request))
        return peer, d

    def test_issued(self):
        made = identity.make_request("alice")
        peer, d = self.login(made.request_pem)
        answer = self.successResultOf(d)
        self.assertEqual(peer.operator.username, "alice")
        self.assertEqual(answer["display_name"], "Alice Agostini")
        certificate = x509.load_pem_x509_certificate(answer["certificate"])
        certificate.verify_directly_issued_by(OperatorCA.certificate)
        who = identity.read_identity(certificate)
        self.assertEqual(
            (who.username, who.display_name, who.organisation, who.group),
            ("alice", "Alice Agostini", "Test Org", "Support"),
        )
        issued_at = datetime.datetime.fromtimestamp(1_800_000_000, datetime.timezone.utc)
        self.assertEqual(certificate.not_valid_before_utc, issued_at - datetime.timedelta(minutes=1))
        self.assertEqual(certificate.not_valid_after_utc, issued_at + datetime.timedelta(hours=2.5))
        self.assertEqual(self.store.kinds()[-2:], ["login", "certificate"])
        reason = self.store.event_rows[-1][3]
        self.assertEqual(reason, f"alice serial {certificate.serial_number:x}")
        recorded = repr(self.store.event_rows)
        self.assertNotIn("BEGIN", recorded)
        self.assertNotIn(made.key_pem().decode(), recorded)

    def test_without_request(self):
        peer, d = self.login(None)
        self.assertEqual(
            self.successResultOf(d), {"display_name": "Alice Agostini", "organisation": "Test Org", "record_sessions": False}
        )
        self.assertNotIn("certificate", self.store.kinds())

    def test_bad_request_refuses_the_login(self):
        peer, d = self.login(b"garbage")
        failure = self.failureResultOf(d, commands.BadCertificateRequest)
        self.assertIn("not PEM", str(failure.value))
        self.assertIsNone(peer.operator)
        self.assertEqual(
            self.store.event_rows[-1][1:4], ("login-failed", "203.0.113.7", "bad certificate request")
        )
        self.assertNotIn("login", self.store.kinds())
        # Not a failed password: no step towards the login rate limit.
        self.assertIsNone(self.switchboard.login_limiter.retry_after("203.0.113.7"))
        for _ in range(10):
            self.failureResultOf(self.login(b"garbage")[1], commands.BadCertificateRequest)
        self.successResultOf(self.login(None)[1])

    def test_wrong_password_gets_no_certificate(self):
        peer, d = self.login(identity.make_request("alice").request_pem, password="nope")
        self.failureResultOf(d, commands.AuthenticationFailed)
        self.assertNotIn("certificate", self.store.kinds())

    def test_no_operator_ca(self):
        switchboard = self.make(operator_ca=False)
        peer, d = self.login(identity.make_request("alice").request_pem, switchboard=switchboard)
        self.failureResultOf(d, commands.BadCertificateRequest)
        self.assertIsNone(peer.operator)
        self.successResultOf(self.login(None, switchboard=switchboard)[1])

    def test_names_that_fit_no_certificate(self):
        peer, d = self.login(identity.make_request("bob").request_pem, username="bob")
        failure = self.failureResultOf(d, commands.BadCertificateRequest)
        self.assertIn("ask your administrator", str(failure.value))
        self.assertIsNone(peer.operator)
        self.flushLoggedErrors()


class ConfigTests(unittest.TestCase):
    def write(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_default_lifetime(self):
        self.assertEqual(configuration.defaults().operator_certificate_lifetime, 8.0)

    def test_lifetime(self):
        for text, hours in (("1.5", 1.5), ("168", 168.0), ("0.25", 0.25)):
            path = self.write(f"[operators]\ncertificate_hours = {text}\n")
            self.assertEqual(configuration.load(path).operator_certificate_lifetime, hours)

    def test_lifetime_out_of_range(self):
        for text in ("0", "-1", "168.5", "1000", "nan", "soon"):
            path = self.write(f"[operators]\ncertificate_hours = {text}\n")
            with self.assertRaises(configuration.ConfigError) as raised:
                configuration.load(path)
            message = str(raised.exception)
            self.assertIn(f"[operators] certificate_hours = '{text}'", message)
            self.assertNotIn("\n", message)

    def test_operator_ca_files(self):
        c = configuration.defaults(state_dir="/srv/ponte")
        self.assertEqual(
            c.operator_ca_files, ("/srv/ponte/tls/operator-ca.crt", "/srv/ponte/tls/operator-ca.key")
        )
        c = configuration.defaults(operator_ca_certificate="/a.crt", operator_ca_key="/a.key")
        self.assertEqual(c.operator_ca_files, ("/a.crt", "/a.key"))

    def start_error(self, extra: str = "", remove: str | None = None) -> str:
        """The one line with which the gateway refuses to start."""
        state = self.mktemp()
        layout = support.make_state(state)
        if remove:
            os.remove(layout.path(remove))
        path = self.write(
            f"[gateway]\nstate_dir = {state}\n[tls]\ncertificate = {layout.path('gateway.crt')}\n"
            f"key = {layout.path('gateway.key')}\n{extra}"
        )
        with self.assertRaises(SystemExit) as raised:
            make_service(path)
        message = str(raised.exception.code)
        self.assertNotIn("\n", message)
        self.assertTrue(message.startswith(f"ponte: {path}: [tls] operator_ca_"), message)
        return message

    def test_missing_operator_ca_key(self):
        message = self.start_error(remove="operator-ca.key")
        self.assertIn("[tls] operator_ca_key = ", message)
        self.assertTrue(message.endswith("operator-ca.key: No such file or directory"), message)

    def test_missing_configured_operator_ca_certificate(self):
        message = self.start_error("operator_ca_certificate = /nonexistent/op.crt\n")
        self.assertIn("[tls] operator_ca_certificate = /nonexistent/op.crt: No such file", message)

    def test_operator_ca_key_of_another_ca(self):
        state = self.mktemp()
        layout = support.make_state(state)
        path = self.write(
            f"[gateway]\nstate_dir = {state}\n[tls]\ncertificate = {layout.path('gateway.crt')}\n"
            f"key = {layout.path('gateway.key')}\noperator_ca_key = {layout.path('ca.key')}\n"
        )
        with self.assertRaises(SystemExit) as raised:
            make_service(path)
        message = str(raised.exception.code)
        self.assertNotIn("\n", message)
        self.assertIn("the operator CA's certificate and key do not load or do not match", message)


class GroupTests(unittest.TestCase):
    def test_migration_adds_groups_to_existing_operators(self):
        """A database of schema 1 with operators migrates; they have no group."""
        path = os.path.join(self.mktemp() + ".d", "ponte.sqlite3")
        os.makedirs(os.path.dirname(path))
        connection = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(connection.close)
        for statement in schema.MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("PRAGMA user_version = 1")
        connection.execute(
            "INSERT INTO operators (username, display_name, password_hash, is_admin, disabled, created_at)"
            " VALUES ('old', 'Old Timer', 'x', 0, 0, 1.0)"
        )
        self.assertEqual(schema.migrate(connection), len(schema.MIGRATIONS))
        self.assertEqual(schema.current_version(connection.cursor()), len(schema.MIGRATIONS))
        cursor = connection.cursor()
        self.assertEqual(
            records.get_operator(cursor, "old"),
            records.Operator("old", "Old Timer", "x", False, False, 1.0),
        )
        self.assertEqual(records.get_operator(cursor, "old").group, "")
        records.add_operator(cursor, records.Operator("new", "New", "y", False, False, 2.0, "Night shift"))
        self.assertEqual(records.get_operator(cursor, "new").group, "Night shift")
        self.assertEqual([op.group for op in records.list_operators(cursor)], ["Night shift", ""])

    def run_admin(self, state, *argv, expect=0):
        out, err = io.StringIO(), io.StringIO()
        self.patch(admin.sys, "stderr", err)
        status = admin.main(["--state", state, *argv], out=out)
        self.assertEqual(status, expect, err.getvalue())
        return out.getvalue() + err.getvalue()

    def test_admin_user_add_group(self):
        state = self.mktemp()
        self.run_admin(state, "init")
        password_file = self.mktemp()
        with open(password_file, "w") as f:
            f.write("a long enough passphrase\n")
        self.run_admin(
            state, "user", "add", "dana", "--display-name", "Dana D.", "--group", "Second line",
            "--password-file", password_file,
        )
        self.run_admin(state, "user", "add", "erin", "--password-file", password_file)
        connection = records.open_database(os.path.join(state, "ponte.sqlite3"))
        self.addCleanup(connection.close)
        self.assertEqual(records.get_operator(connection.cursor(), "dana").group, "Second line")
        self.assertEqual(records.get_operator(connection.cursor(), "erin").group, "")
        listing = self.run_admin(state, "user", "list")
        self.assertTrue(listing.splitlines()[0].endswith(" group"), listing)
        self.assertRegex(listing, r"dana\s+Dana D\.\s+no\s+active\s+no\s+no\s+\d{4}-\d\d-\d\d\s+Second line\n")
        self.assertRegex(listing, r"erin\s+erin\s+no\s+active\s+no\s+no\s+\d{4}-\d\d-\d\d\s+-\n")

    def test_admin_refuses_a_display_name_no_certificate_can_hold(self):
        state = self.mktemp()
        self.run_admin(state, "init")
        output = self.run_admin(state, "user", "add", "dana", "--display-name", "D" * 65, expect=1)
        self.assertIn("the display name must have 1 to 64 characters", output)


class GatewayTests(unittest.TestCase):
    """A console logs in with a certificate request to a real gateway."""

    HOURS = 3.5

    def setUp(self):
        self.gateway = support.RunningGateway(
            self,
            operators=(("alice", "Alice Agostini", False, "Support"), ("bob", "Bob Berg", False)),
            operator_certificate_lifetime=self.HOURS,
        )
        with open(self.gateway.layout.path("operator-ca.crt"), "rb") as f:
            self.operator_ca = x509.load_pem_x509_certificate(f.read())

    async def control(self):
        control = await self.gateway.connect(self)
        await control.hello(commands.ROLE_OPERATOR)
        return control

    async def test_login_with_request(self):
        control = await self.control()
        made = identity.make_request("alice")
        answer = await control.login("alice", support.PASSWORD, made.request_pem)
        self.assertEqual(answer["display_name"], "Alice Agostini")
        self.assertEqual(answer["organisation"], "Test Org")
        certificate = x509.load_pem_x509_certificate(answer["certificate"])
        certificate.verify_directly_issued_by(self.operator_ca)
        self.assertEqual(certificate.public_key(), made.key.public_key())
        who = identity.read_identity(certificate)
        self.assertEqual(
            (who.username, who.display_name, who.organisation, who.group),
            ("alice", "Alice Agostini", "Test Org", "Support"),
        )
        self.assertEqual(
            certificate.not_valid_after_utc - certificate.not_valid_before_utc,
            datetime.timedelta(hours=self.HOURS, minutes=1),
        )
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs(certificate.not_valid_after_utc - (now + datetime.timedelta(hours=self.HOURS))),
                        datetime.timedelta(seconds=30))
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, usage)
        # Logged in: commands that need it work.
        await control.callRemote(commands.CreateSession)
        await support.wait_for(lambda: "certificate" in self._kinds)
        reasons = [e[3] for e in self._events if e[1] == "certificate"]
        self.assertEqual(reasons, [f"alice serial {certificate.serial_number:x}"])

    @property
    def _kinds(self):
        return [e[1] for e in self._events]

    @property
    def _events(self):
        connection = records.open_database(self.gateway.config.database)
        try:
            return records.events(connection.cursor())
        finally:
            connection.close()

    async def test_login_without_request(self):
        control = await self.control()
        answer = await control.login("bob", support.PASSWORD)
        self.assertEqual(answer, {"display_name": "Bob Berg", "organisation": "Test Org", "record_sessions": False})
        await control.callRemote(commands.CreateSession)

    async def refused(self, request: bytes, expected: str):
        control = await self.control()
        with self.assertRaises(commands.BadCertificateRequest) as raised:
            await control.login("alice", support.PASSWORD, request)
        self.assertIn(expected, str(raised.exception))
        with self.assertRaises(commands.NotLoggedIn):
            await control.callRemote(commands.CreateSession)
        # The connection is still usable: a good login works afterwards.
        answer = await control.login("alice", support.PASSWORD, identity.make_request("alice").request_pem)
        x509.load_pem_x509_certificate(answer["certificate"]).verify_directly_issued_by(self.operator_ca)

    async def test_garbage_request(self):
        await self.refused(b"\x00garbage" * 10, "not PEM")

    async def test_request_signed_by_another_key(self):
        await self.refused(request_signed_by_another_key(), "signature does not verify")
