"""
The blocking TLS sockets of the benchmark's clients (stdlib C{ssl}): one
policy for every path, the gateway's (see L{wire.tls}), so that the three
paths differ only in what sits between the two clients.
"""

import socket
import ssl

import attrs

HOST = "127.0.0.1"
SERVER_NAME = "localhost"
# The TLS 1.2 suites the gateway allows (wire.tls.TLS12_CIPHERS); TLS 1.3
# uses OpenSSL's defaults on every leg.  Copied so that the client processes
# do not import Twisted.
TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
SOCKET_TIMEOUT = 30.0


@attrs.frozen
class TlsFiles:
    """The PEM files of the benchmark's own CA and server certificate."""

    ca: str
    certificate: str
    key: str


def _harden(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context that trusts only the benchmark's CA."""
    context = ssl.create_default_context(cafile=files.ca)
    return _harden(context)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context with the gateway's certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.certificate, files.key)
    return _harden(context)


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(SOCKET_TIMEOUT)


def connect(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A TLS connection to C{127.0.0.1:port}, handshake done, certificate verified."""
    raw = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT)
    _tune(raw)
    try:
        return context.wrap_socket(raw, server_hostname=SERVER_NAME)
    except BaseException:
        raw.close()
        raise


def listen(port: int = 0, backlog: int = 4096) -> socket.socket:
    """A listening TCP socket on C{127.0.0.1:port} (0: any free port)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen(backlog)
    listener.settimeout(SOCKET_TIMEOUT)
    return listener


def accept(listener: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
    """Accept one connection on C{listener} and finish the server handshake."""
    raw, _ = listener.accept()
    _tune(raw)
    try:
        return context.wrap_socket(raw, server_side=True)
    except BaseException:
        raw.close()
        raise


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def recv_exactly(sock: ssl.SSLSocket, size: int) -> bytes:
    """Read exactly C{size} bytes; L{ConnectionError} on an early end."""
    chunks, missing = [], size
    while missing:
        chunk = sock.recv(missing)
        if not chunk:
            raise ConnectionError(f"connection closed with {missing} of {size} bytes unread")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
