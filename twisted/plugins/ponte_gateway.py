"""
The C{twistd ponte} plugin.  It imports nothing heavy: the gateway is only
imported when C{twistd} asks for the service.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    """Command line of C{twistd ponte}."""

    optParameters = [
        ["config", "c", "/etc/ponte/ponte.conf", "the gateway's configuration file"],
    ]


@implementer(IServiceMaker, IPlugin)
class PonteServiceMaker:
    """Makes the Ponte gateway service."""

    tapname = "ponte"
    description = "Ponte remote-support gateway"
    options = Options

    def makeService(self, options):
        from gateway.service import make_service

        return make_service(options["config"])


ponte = PonteServiceMaker()
