"""Running an asynchronous command-line action on a reactor of its own."""

from twisted.internet import defer
from twisted.internet.task import react


def run(action, *args):
    """
    Run C{await action(reactor, *args)} on the global reactor until it is
    done; return its result or raise its exception, as a plain call would.
    """
    outcome = {}

    async def main(reactor):
        try:
            outcome["result"] = await action(reactor, *args)
        except Exception as e:
            outcome["error"] = e

    try:
        react(lambda reactor: defer.ensureDeferred(main(reactor)))
    except SystemExit:
        pass  # react always exits; the outcome says how it went
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
