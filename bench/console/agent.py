#!/usr/bin/env python3
"""
The agent's side of the console benchmark, in a process of its own:

    agent.py PORT [--display :N]

The screen benchmark's agent side (L{bench.screen.agent_side.ScreenAgent}:
C{agent.screen.ScreenSource} with its default settings, the agent session
core's frame loop, C{FrameUpdate}s of at most 64 KiB of tiles, a
C{CursorUpdate} after a frame when the pointer changed), with the two
things the console's session window needs before it asks for frames: it
tells the console at once that viewing is granted (C{GrantsChanged}, as the
agent's session core does when the customer allows it) and it answers
C{ListMonitors}.  It connects to 127.0.0.1:PORT (the console) and exits
when the connection ends.
"""

import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from twisted.internet import protocol, reactor  # noqa: E402

from agent import screen  # noqa: E402
from bench.screen.agent_side import ScreenAgent  # noqa: E402
from wire import session_commands as sc  # noqa: E402


class ViewingAgent(ScreenAgent):
    """L{ScreenAgent} that grants viewing on connection and lists its monitors."""

    def connectionMade(self):
        super().connectionMade()
        self.callRemote(sc.GrantsChanged, grants=[{"scope": sc.VIEW}], reason="the customer allowed viewing")

    @sc.ListMonitors.responder
    def list_monitors(self):
        return {"monitors": [
            {"index": m.index, "left": m.left, "top": m.top, "width": m.width, "height": m.height, "primary": m.primary}
            for m in self.source.monitors()
        ]}


class Factory(protocol.ClientFactory):
    def __init__(self, source):
        self.source = source

    def buildProtocol(self, addr):
        return ViewingAgent(self.source)

    def clientConnectionFailed(self, connector, reason):
        print(f"agent side: cannot connect: {reason.getErrorMessage()}", file=sys.stderr, flush=True)
        reactor.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--display", default=os.environ.get("DISPLAY"))
    options = parser.parse_args(argv)
    source = screen.ScreenSource(screen.ScreenSettings(), reactor, options.display)
    reactor.connectTCP("127.0.0.1", options.port, Factory(source))
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
