"""
C{ponte-console}: the operator's program.  It logs in to the gateway, makes
session codes, shows the customers waiting and opens a session window for
each one picked up.  Gateway, ports, CA and proxy default to what the last
successful login used (remembered in C{$XDG_CONFIG_HOME/ponte/console.json},
never the password); options given here override them.

Exit status: 0 when the operator quits (or on SIGTERM, after ending the
sessions), 2 when the options are wrong or no window can be opened.
"""

import argparse
import os
import sys

import attrs

from console import settings as remembered
from wire import ladder, proxy


def parser(defaults: remembered.ConsoleSettings) -> argparse.ArgumentParser:
    """The command line's grammar, with C{defaults} from the remembered settings."""
    top = argparse.ArgumentParser(prog="ponte-console", description=__doc__.strip().splitlines()[0])
    top.add_argument("--gateway", default=defaults.gateway, help=f"the gateway's name (default {defaults.gateway})")
    top.add_argument("--raw-port", type=int, default=defaults.raw_port, help=f"raw TLS port (default {defaults.raw_port})")
    top.add_argument("--https-port", type=int, default=defaults.https_port, help=f"HTTPS port (default {defaults.https_port})")
    top.add_argument("--http-port", type=int, default=defaults.http_port,
                     help=f"plain HTTP port for the tunnel through proxies (default {defaults.http_port})")
    top.add_argument("--ca", default=defaults.ca, help="the CA certificate the gateway's certificate must verify against"
                     + (f" (default {defaults.ca})" if defaults.ca else ""))
    top.add_argument("--proxy", default=defaults.proxy or None,
                     help="http://[user:password@]host:port (default: https_proxy from the environment)")
    top.add_argument("--keepalive", type=float, default=60.0,
                     help="seconds between signs of life on an idle connection to the gateway (default 60)")
    top.add_argument("--receive-directory", help="where files from customers go (default ~/Downloads/Ponte)")
    top.add_argument("--record-directory",
                     help="record every session into this directory (otherwise the Record button uses ~/Videos/Ponte)")
    return top


def _proxy(options):
    if options.proxy:
        return proxy.ProxySettings.from_url(options.proxy)
    return proxy.from_environment(options.gateway)


def _start_logging() -> None:
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)


def main(argv=None) -> int:
    """Run C{ponte-console}; returns the exit status."""
    path = remembered.default_path()
    defaults = remembered.load(path)
    options = parser(defaults).parse_args(argv)
    try:
        settings = attrs.evolve(
            defaults, gateway=options.gateway, raw_port=options.raw_port, https_port=options.https_port,
            http_port=options.http_port, ca=options.ca or "",
            # A proxy's password is not remembered: only one given without one.
            proxy=options.proxy if options.proxy and "@" not in options.proxy else defaults.proxy,
        )
        proxy_settings = _proxy(options)
        if not options.keepalive > 0:
            raise ValueError("--keepalive must be a number of seconds above 0")
    except ValueError as e:
        sys.stderr.write(f"ponte-console: {e}\n")
        return 2

    from twisted.internet import reactor

    from console.app import ConsoleApp
    from wire.tkbridge import open_root, run_program

    _start_logging()
    receive = options.receive_directory or os.path.join(os.path.expanduser("~"), "Downloads", "Ponte")
    root = open_root("ponte-console")
    if root is None:
        return 2
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    except OSError:
        pass  # then nothing is remembered
    memory = ladder.LadderMemory(path=os.path.join(os.path.dirname(path), "console-way"))
    app = ConsoleApp(root, reactor, settings, path, receive, proxy_settings, memory, keepalive=options.keepalive,
                     record_directory=options.record_directory)
    return run_program(root, app)


if __name__ == "__main__":
    sys.exit(main())
