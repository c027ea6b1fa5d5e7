"""
The appliance's own keys and certificates, made by C{ponte-admin init}: a
development CA and the gateway certificate it signs, the operator CA (which
signs operators' short-lived certificates) and the agent-signing key; and
the issuing of those operator certificates.
"""

import datetime
import ipaddress
import os
import socket

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wire import identity


@attrs.frozen
class Layout:
    """Where the files live under a state directory's C{tls/} folder."""

    directory: str

    def path(self, name: str) -> str:
        """The full path of one of the files below."""
        return os.path.join(self.directory, name)

    ca_certificate = "ca.crt"
    ca_key = "ca.key"
    gateway_certificate = "gateway.crt"
    gateway_key = "gateway.key"
    operator_ca_certificate = "operator-ca.crt"
    operator_ca_key = "operator-ca.key"
    signing_key = "agent-signing.key"
    signing_public = "agent-signing.pub"

    def all_files(self) -> list[str]:
        """Every file C{init} writes."""
        return [
            self.path(n)
            for n in (
                self.ca_certificate,
                self.ca_key,
                self.gateway_certificate,
                self.gateway_key,
                self.operator_ca_certificate,
                self.operator_ca_key,
                self.signing_key,
                self.signing_public,
            )
        ]


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def make_ca(common_name: str, organisation: str, days: int = 3650):
    """A self-signed CA certificate and its EC P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name, organisation)
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def default_server_names() -> list[str]:
    """The names a development gateway certificate covers."""
    names = ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname()
    for candidate in (host, socket.getfqdn()):
        if candidate and candidate not in names:
            names.append(candidate)
    return names


def make_server_certificate(ca_certificate, ca_key, names: list[str], organisation: str, days=825):
    """A server certificate for C{names} (DNS names or IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives = []
    for n in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alternatives.append(x509.DNSName(n))
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0], organisation))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


def certificate_pem(certificate) -> bytes:
    """PEM encoding of a certificate."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    """Unencrypted PKCS#8 PEM encoding of a private key."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_file(path: str, data: bytes, secret: bool) -> None:
    """Write C{data} to C{path}; mode 0600 for C{secret} files, else 0644."""
    mode = 0o600 if secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def initialise(layout: Layout, organisation: str, names: list[str] | None = None) -> list[str]:
    """
    Make every key and certificate of C{layout}; returns the files written.
    The caller decides whether existing files may be replaced.
    """
    os.makedirs(layout.directory, mode=0o700, exist_ok=True)
    ca, ca_key = make_ca(f"{organisation} Ponte development CA", organisation)
    server, server_key = make_server_certificate(
        ca, ca_key, names or default_server_names(), organisation
    )
    operator_ca, operator_ca_key = make_ca(f"{organisation} Ponte operator CA", organisation)
    signing = ed25519.Ed25519PrivateKey.generate()
    signing_public = signing.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    outputs = [
        (layout.ca_certificate, certificate_pem(ca), False),
        (layout.ca_key, key_pem(ca_key), True),
        (layout.gateway_certificate, certificate_pem(server), False),
        (layout.gateway_key, key_pem(server_key), True),
        (layout.operator_ca_certificate, certificate_pem(operator_ca), False),
        (layout.operator_ca_key, key_pem(operator_ca_key), True),
        (layout.signing_key, key_pem(signing), True),
        (layout.signing_public, signing_public, False),
    ]
    for name, data, secret in outputs:
        write_file(layout.path(name), data, secret)
    return [layout.path(name) for name, _, _ in outputs]


# -- operator certificates ---------------------------------------------------


class BadCertificateRequest(ValueError):
    """A certificate request cannot be used; the message says why."""


@attrs.frozen
class OperatorCA:
    """The operator CA's certificate and private key, loaded once."""

    certificate: x509.Certificate
    key: object = attrs.field(repr=False)


def parse_operator_ca(certificate_pem: bytes, key_pem: bytes) -> OperatorCA:
    """
    The operator CA from its PEM certificate and unencrypted PEM key.

    @raise ValueError: if either does not load, or the key is not the
        certificate's.
    """
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if key.public_key() != certificate.public_key():
        raise ValueError("the key is not the certificate's")
    return OperatorCA(certificate, key)


def load_operator_ca(layout: Layout) -> OperatorCA:
    """The operator CA of a state directory's C{tls/} folder."""
    with open(layout.path(layout.operator_ca_certificate), "rb") as f:
        certificate_pem = f.read()
    with open(layout.path(layout.operator_ca_key), "rb") as f:
        key_pem = f.read()
    return parse_operator_ca(certificate_pem, key_pem)


_OPERATOR_CURVES = (ec.SECP256R1, ec.SECP384R1)


def _checked_request(request_pem: bytes) -> x509.CertificateSigningRequest:
    """The request in C{request_pem}, if it is one the gateway signs."""
    if not isinstance(request_pem, bytes) or b"-----BEGIN" not in request_pem:
        raise BadCertificateRequest("the certificate request is not PEM")
    try:
        request = x509.load_pem_x509_csr(request_pem)
    except ValueError:
        raise BadCertificateRequest("the certificate request is malformed") from None
    try:
        public_key = request.public_key()
        valid = request.is_signature_valid
    except Exception:
        # An unknown key type or signature algorithm.
        raise BadCertificateRequest(
            "the certificate request's key or signature algorithm is not supported"
        ) from None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, _OPERATOR_CURVES):
            raise BadCertificateRequest(
                f"the certificate request's key is on curve {public_key.curve.name}; "
                "use P-256, P-384 or Ed25519"
            )
    elif not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise BadCertificateRequest(
            f"the certificate request's key is {type(public_key).__name__}; "
            "use EC P-256, P-384 or Ed25519"
        )
    if not valid:
        raise BadCertificateRequest(
            "the certificate request's signature does not verify with the key it contains"
        )
    return request


def issue_operator_certificate(
    request_pem: bytes,
    ca_certificate: x509.Certificate,
    ca_key,
    *,
    username: str,
    display_name: str,
    organisation: str,
    group: str,
    lifetime: datetime.timedelta,
    now: datetime.datetime,
) -> x509.Certificate:
    """
    A short-lived operator certificate for the key of a PEM certificate
    request.  The request only proves possession of the key: its subject
    and extensions are ignored, and the certificate names the operator with
    L{wire.identity.operator_subject}.  It is valid from one minute before
    C{now} (whole seconds) until C{now + lifetime}, for TLS servers (the
    console is the server of the end-to-end channel) and clients.

    @raise BadCertificateRequest: if the request is not PEM, is malformed,
        its signature does not verify, or its key is not EC P-256, P-384 or
        Ed25519.
    """
    request = _checked_request(request_pem)
    now = now.replace(microsecond=0)
    try:
        issuer_key_id = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    except x509.ExtensionNotFound:
        issuer_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    public_key = request.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(identity.operator_subject(username, display_name, organisation, group))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(issuer_key_id, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
