"""
HTTPS for Ponte's clients: a C{twisted.web} TLS policy that trusts only the
gateway's CA, with the settings of L{wire.tls}.
"""

from twisted.web.client import IPolicyForHTTPS
from zope.interface import implementer

from wire import tls


@implementer(IPolicyForHTTPS)
class Policy:
    """Verify every HTTPS server against C{ca_pem} only."""

    def __init__(self, ca_pem: bytes):
        self._ca = ca_pem

    def creatorForNetloc(self, hostname, port):
        return tls.client_options(hostname.decode("ascii"), self._ca)
