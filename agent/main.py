"""
C{ponte-agent}: the customer's program.

This version has one mode, C{--check}: a connectivity test that tries
every way to the gateway (raw TLS, the HTTPS port, the proxy's CONNECT,
the request tunnel directly and through the proxy), prints each one's
result and time, and exits 0 if at least one works.
"""

import argparse
import sys


from wire import cli, commands, ladder, proxy


def parser() -> argparse.ArgumentParser:
    """The command line's grammar."""
    top = argparse.ArgumentParser(prog="ponte-agent", description=__doc__.strip().splitlines()[0])
    top.add_argument("--check", action="store_true", required=True,
                     help="test every way to the gateway and exit (the only mode so far)")
    top.add_argument("--gateway", default="localhost", help="the gateway's name (default localhost)")
    top.add_argument("--raw-port", type=int, default=4433, help="raw TLS port (default 4433)")
    top.add_argument("--https-port", type=int, default=8443, help="HTTPS port (default 8443; 443 in production)")
    top.add_argument("--http-port", type=int, default=8080, help="plain HTTP port for the tunnel through proxies (default 8080)")
    top.add_argument("--ca", required=True, help="the CA certificate the gateway's certificate must verify against")
    top.add_argument("--proxy", help="http://[user:password@]host:port (default: https_proxy from the environment)")
    return top


async def check(reactor, options, out) -> int:
    """Run the connectivity test; returns the exit status."""
    with open(options.ca, "rb") as f:
        ca = f.read()
    if options.proxy:
        settings = proxy.ProxySettings.from_url(options.proxy)
    else:
        settings = proxy.from_environment(options.gateway)
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


def main(argv=None, out=None) -> int:
    """Run C{ponte-agent}; returns the exit status."""
    options = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        open(options.ca, "rb").close()
        if options.proxy:
            proxy.ProxySettings.from_url(options.proxy)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"ponte-agent: {e}\n")
        return 2
    return cli.run(check, options, out)


if __name__ == "__main__":
    sys.exit(main())
