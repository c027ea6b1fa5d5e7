"""
TLS for the gateway's connections, tuned for relaying bulk data.

Twisted's TLS transport hands the application one TLS record (at most
16 KiB) at a time and, on the way out, encrypts and writes one record at a
time, each with its own write to the socket; its default buffering variant
also copies every write.  A relay leg moves large chunks, so this variant:

- delivers everything one socket read decrypted as a single chunk,
- encrypts a whole chunk with one OpenSSL call (the context has partial
  writes turned off, see L{wire.tls}) and
- writes the resulting records to the socket with one write.

It overrides three internals of L{TLSMemoryBIOProtocol} (C{_flushReceiveBIO},
C{_write}, C{_flushSendBIO}); the Twisted version is pinned, and the
tests exercise every path (handshake, bulk, close_notify, errors).
"""

from OpenSSL.SSL import Error, WantReadError, ZeroReturnError
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure

# One TLS record carries at most 16 KiB of data.
_RECORD = 2**14
# Bytes TLS adds to a record at most (header, tag, padding), with margin.
_OVERHEAD = 256


class BulkTLSProtocol(TLSMemoryBIOProtocol):
    """L{TLSMemoryBIOProtocol} that moves data in large chunks; see the module."""

    def _flushReceiveBIO(self):
        chunks = []
        while not self._lostTLSConnection:
            try:
                chunks.append(self._tlsConnection.recv(_RECORD))
            except WantReadError:
                break
            except ZeroReturnError:
                self._deliver(chunks)
                chunks = []
                self._shutdownTLS()
                self._tlsShutdownFinished(None)
            except Error:
                self._deliver(chunks)
                chunks = []
                self._tlsShutdownFinished(Failure())
        self._deliver(chunks)
        self._flushSendBIO()

    def _deliver(self, chunks):
        if chunks and not self._aborted:
            ProtocolWrapper.dataReceived(self, chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _write(self, data):
        if self._lostTLSConnection:
            return
        try:
            self._tlsConnection.send(data)
        except WantReadError:
            # Still handshaking: keep the data until the handshake is done.
            self._bufferedWrite(data)
            return
        except Error:
            self._tlsShutdownFinished(Failure())
            return
        self._flushSendBIO(len(data))

    def _flushSendBIO(self, hint=0):
        size = max(2**15, hint + (hint // _RECORD + 1) * _OVERHEAD)
        out = []
        while True:
            try:
                out.append(self._tlsConnection.bio_read(size))
            except WantReadError:
                break
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


class BulkTLSFactory(TLSMemoryBIOFactory):
    """A server-side TLS wrapper whose connections are L{BulkTLSProtocol}s."""

    protocol = BulkTLSProtocol
