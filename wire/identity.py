"""
Operator identities in certificates: the key pair and certificate request
a console makes at login, and what an agent reads from the certificate the
gateway issued (who the operator is, of which organisation and group).

The subject names the operator: common name = display name, organisation,
organisational unit = group, user id = username.
"""

import datetime

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@attrs.frozen
class OperatorIdentity:
    """Who an operator certificate names."""

    username: str
    display_name: str
    organisation: str
    group: str
    not_after: datetime.datetime


def operator_subject(username: str, display_name: str, organisation: str, group: str) -> x509.Name:
    """The subject of an operator certificate."""
    attributes = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, display_name),
        x509.NameAttribute(NameOID.USER_ID, username),
    ]
    if group:
        attributes.insert(1, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, group))
    return x509.Name(attributes)


def _one(name: x509.Name, oid) -> str:
    found = name.get_attributes_for_oid(oid)
    return found[0].value if found else ""


def read_identity(certificate: x509.Certificate) -> OperatorIdentity:
    """The operator an (already verified) operator certificate names."""
    subject = certificate.subject
    return OperatorIdentity(
        username=_one(subject, NameOID.USER_ID),
        display_name=_one(subject, NameOID.COMMON_NAME),
        organisation=_one(subject, NameOID.ORGANIZATION_NAME),
        group=_one(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        not_after=certificate.not_valid_after_utc,
    )


@attrs.frozen
class KeyAndRequest:
    """A fresh private key and the PEM certificate request for it."""

    key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    request_pem: bytes

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (kept in memory only)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def make_request(username: str) -> KeyAndRequest:
    """
    A new EC P-256 key and a certificate request for it.  The gateway
    ignores the request's subject and names the logged-in operator itself;
    the request only proves possession of the key.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.USER_ID, username)]))
        .sign(key, hashes.SHA256())
    )
    return KeyAndRequest(key, request.public_bytes(serialization.Encoding.PEM))
