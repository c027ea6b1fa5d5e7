"""
C{ponte-agent}: the customer's program.  It opens a window asking for the
code the operator gave, shows who is waiting and the terms, and runs the
session with its panel on screen; when the session ends it shows a summary
and exits.  Nothing of it keeps running or listening afterwards.

C{--check} instead tests every way to the gateway (raw TLS, the HTTPS port,
the proxy's CONNECT, the request tunnel directly and through the proxy),
prints each one's result and time, and exits 0 if at least one works.
"""

import argparse
import os
import sys

from wire import cli, commands, ladder, proxy


def parser() -> argparse.ArgumentParser:
    """The command line's grammar."""
    top = argparse.ArgumentParser(prog="ponte-agent", description=__doc__.strip().splitlines()[0])
    top.add_argument("--check", action="store_true", help="test every way to the gateway and exit")
    top.add_argument("--gateway", default="localhost", help="the gateway's name (default localhost)")
    top.add_argument("--raw-port", type=int, default=4433, help="raw TLS port (default 4433)")
    top.add_argument("--https-port", type=int, default=8443, help="HTTPS port (default 8443; 443 in production)")
    top.add_argument("--http-port", type=int, default=8080, help="plain HTTP port for the tunnel through proxies (default 8080)")
    top.add_argument("--ca", required=True, help="the CA certificate the gateway's certificate must verify against")
    top.add_argument("--proxy", help="http://[user:password@]host:port (default: https_proxy from the environment)")
    top.add_argument("--operator-ca", help="the operator CA: operators' certificates must verify against it")
    top.add_argument("--receive-directory", help="where received files go (default ~/Downloads/Ponte)")
    top.add_argument("--routing-length", type=int, default=4, help="characters of the code the gateway routes by (default 4)")
    top.add_argument("--secret-length", type=int, default=3, help="characters of the code's secret part (default 3)")
    top.add_argument("--remove-after", nargs="?", const="", metavar="PATH",
                     help="delete this downloaded program (PATH, default the program itself) when it exits")
    return top


async def check(reactor, options, out) -> int:
    """Run the connectivity test; returns the exit status."""
    with open(options.ca, "rb") as f:
        ca = f.read()
    settings = _proxy(options)
    address = ladder.GatewayAddress(options.gateway, options.raw_port, options.https_port, ca, options.http_port)
    report = await ladder.Ladder(reactor, address, settings).probe(commands.ROLE_AGENT)
    via = f" (proxy {settings.host}:{settings.port})" if settings else " (no proxy)"
    out.write(f"ways to {options.gateway}{via}:\n")
    for line in report.lines():
        out.write(f"  {line}\n")
    if report.winner is None:
        out.write("no way to the gateway works\n")
        return 1
    out.write(f"a session would use: {report.winner}\n")
    return 0


def _proxy(options):
    if options.proxy:
        return proxy.ProxySettings.from_url(options.proxy)
    return proxy.from_environment(options.gateway)


def interactive(options) -> int:
    """Run the customer's windows until the session (if any) is over; returns the exit status."""
    from twisted.internet import reactor

    from agent.app import AgentApp, AgentSettings
    from agent.logfile import start_local_log
    from agent.platform import DesktopPlatform, default_receive_directory
    from wire.tkbridge import open_root, run_program

    with open(options.ca, "rb") as f:
        ca = f.read()
    with open(options.operator_ca, "rb") as f:
        operator_ca = f.read()
    receive = options.receive_directory or default_receive_directory()
    settings = AgentSettings(
        gateway=ladder.GatewayAddress(options.gateway, options.raw_port, options.https_port, ca, options.http_port),
        operator_ca_pem=operator_ca,
        receive_directory=receive,
        proxy=_proxy(options),
        routing_length=options.routing_length,
        secret_length=options.secret_length,
    )
    root = open_root("ponte-agent")
    if root is None:
        return 2
    local_log = start_local_log()
    try:
        return run_program(root, AgentApp(root, reactor, settings,
                                          lambda clipboard: DesktopPlatform(reactor, clipboard, receive)))
    finally:
        local_log.stop()


def remove_program(path: str) -> None:
    """Delete the downloaded copy of the program (C{--remove-after})."""
    target = os.path.realpath(path or sys.argv[0])
    if os.path.isfile(target):
        os.remove(target)


def main(argv=None, out=None) -> int:
    """Run C{ponte-agent}; returns the exit status."""
    options = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        open(options.ca, "rb").close()
        if not options.check:
            if not options.operator_ca:
                raise ValueError("--operator-ca is needed to check who the operator is")
            open(options.operator_ca, "rb").close()
        _proxy(options)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"ponte-agent: {e}\n")
        return 2
    if options.check:
        return cli.run(check, options, out)
    try:
        return interactive(options)
    finally:
        if options.remove_after is not None:
            remove_program(options.remove_after)


if __name__ == "__main__":
    sys.exit(main())
