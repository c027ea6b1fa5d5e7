"""
Every TLS setting of Ponte, in one place: the gateway's server options and
the clients' options for reaching a gateway, and the end-to-end channel
between console and agent inside the relayed stream.

TLS 1.2 is the minimum; its suites are limited to ECDHE key exchange with
AES-256-GCM or ChaCha20-Poly1305.  TLS 1.3 suites and key-exchange groups
are what the bundled OpenSSL offers (a hybrid post-quantum group first when
both ends have it).  Compression and renegotiation are off.  Clients always
verify the gateway against the CA certificate they were given.
"""

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
# OpenSSL's SSL_MODE_ENABLE_PARTIAL_WRITE (ssl.h); pyOpenSSL sets it on every
# context but does not export the constant.
_SSL_MODE_ENABLE_PARTIAL_WRITE = 0x1


class _ServerOptions(ssl.CertificateOptions):
    """
    L{CertificateOptions} (which already disables compression and releases
    idle buffers) that also refuses renegotiation, encrypts a whole write in
    one call instead of one record per call (no partial writes: the gateway
    writes to memory, which never blocks), and answers ALPN sanely.
    """

    _hardened = False

    def getContext(self) -> SSL.Context:
        context = super().getContext()
        if not self._hardened:
            # A context cannot change once it has made a connection.
            context.set_options(SSL.OP_NO_RENEGOTIATION)
            context.clear_mode(_SSL_MODE_ENABLE_PARTIAL_WRITE)
            # Twisted's own ALPN callback fails the handshake of every client
            # that offers ALPN (browsers, curl) when nothing is configured.
            context.set_alpn_select_callback(_select_alpn)
            self._hardened = True
        return context


def _select_alpn(connection, offered):
    """HTTP/1.1 if the client offers it; otherwise carry on without ALPN."""
    return b"http/1.1" if b"http/1.1" in offered else SSL.NO_OVERLAPPING_PROTOCOLS


def _common() -> dict:
    return dict(
        raiseMinimumTo=MINIMUM_VERSION,
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(TLS12_CIPHERS),
    )


def server_options(certificate_pem: bytes, key_pem: bytes) -> ssl.CertificateOptions:
    """
    Options for a gateway listener from a PEM certificate (with any
    intermediate certificates after it) and its PEM private key.

    @raise ValueError: if the PEM data cannot be read or do not match.
    """
    chain = x509.load_pem_x509_certificates(certificate_pem)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        options = _ServerOptions(
            privateKey=crypto.PKey.from_cryptography_key(key),
            certificate=crypto.X509.from_cryptography(chain[0]),
            extraCertChain=[crypto.X509.from_cryptography(c) for c in chain[1:]],
            **_common(),
        )
        options.getContext()
    except (SSL.Error, TypeError) as e:
        raise ValueError(f"certificate and key do not load or do not match: {e}") from e
    return options


def client_options(hostname: str, ca_pem: bytes) -> IOpenSSLClientConnectionCreator:
    """
    Options for connecting to a gateway called C{hostname} (a DNS name or an
    IP address in its certificate), trusting only the CA in C{ca_pem}.
    """
    trust = ssl.trustRootFromCertificates(
        [
            ssl.Certificate(crypto.X509.from_cryptography(c))
            for c in x509.load_pem_x509_certificates(ca_pem)
        ]
    )
    return ssl.optionsForClientTLS(hostname, trustRoot=trust, extraCertificateOptions=_common())



# -- the end-to-end channel inside the relayed stream -------------------------
#
# Inside, TLS 1.3 only: the console is the server with its operator
# certificate, the agent the client trusting only the operator CA it was
# configured with.  There is no host name to check; the agent reads the
# operator's identity from the verified certificate instead.

# OpenSSL X509_V_ERR_* codes worth a specific message for the customer.
_VERIFY_MESSAGES = {
    9: "the operator's certificate is not valid yet (check this computer's clock)",
    10: "the operator's certificate has expired",
    18: "the operator's certificate was not issued by this organisation's operator CA",
    19: "the operator's certificate was not issued by this organisation's operator CA",
    20: "the operator's certificate was not issued by this organisation's operator CA",
    21: "the operator's certificate was not issued by this organisation's operator CA",
    7: "the operator's certificate has a bad signature",
}


def inner_server_options(certificate_pem: bytes, key_pem: bytes) -> ssl.CertificateOptions:
    """The console's options for the end-to-end TLS: its operator certificate, TLS 1.3 only."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    return ssl.CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(key),
        certificate=crypto.X509.from_cryptography(x509.load_pem_x509_certificate(certificate_pem)),
        raiseMinimumTo=ssl.TLSVersion.TLSv1_3,
    )


@implementer(IOpenSSLClientConnectionCreator)
class InnerClientOptions:
    """
    The agent's options for the end-to-end TLS: TLS 1.3 only, the peer's
    certificate must chain to the operator CA.  One instance per session:
    it remembers why verification failed (L{problem}) so the customer can be
    told in plain words.
    """

    def __init__(self, operator_ca_pem: bytes):
        self._cas = [
            crypto.X509.from_cryptography(c) for c in x509.load_pem_x509_certificates(operator_ca_pem)
        ]
        self.problem: str | None = None

    def _verify(self, connection, certificate, error_number, depth, ok) -> bool:
        if not ok and self.problem is None:
            self.problem = _VERIFY_MESSAGES.get(
                error_number,
                f"the operator's certificate does not verify (OpenSSL error {error_number})",
            )
        return bool(ok)

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """A client connection for one end-to-end channel."""
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(SSL.TLS1_3_VERSION)
        context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_TICKET)
        store = context.get_cert_store()
        for ca in self._cas:
            store.add_cert(ca)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)
        connection = SSL.Connection(context, None)
        connection.set_connect_state()
        return connection
