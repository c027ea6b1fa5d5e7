"""
The appliance's own keys and certificates, made by C{ponte-admin init}: a
development CA and the gateway certificate it signs, the operator CA (which
signs operators' short-lived certificates) and the agent-signing key.
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
