"""
The two relays under test, each started as its own process from a
temporary directory: the Ponte gateway (C{twistd ponte}) and haproxy.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time

import attrs

from bench.relay import endpoints
from bench.relay.errors import BenchError
from gateway import passwords, pki, records, schema

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
OPERATOR = "bench"


class RelayProcess:
    """A relay program running in its own process, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_path: str, cwd: str, env=None):
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            try:
                self._popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                )
            except OSError as e:
                raise BenchError(f"cannot start {name} ({argv[0]}): {e}") from e

    @property
    def pid(self) -> int:
        """The relay's process id."""
        return self._popen.pid

    def check(self) -> None:
        """@raise BenchError: if the relay has exited."""
        code = self._popen.poll()
        if code is not None:
            raise BenchError(f"{self.name} exited with status {code}:\n{self.log_tail()}")

    def wait_listening(self, port: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until C{127.0.0.1:port} accepts TCP connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                socket.create_connection((endpoints.HOST, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise BenchError(f"{self.name} did not listen on port {port} within {timeout:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the relay's output."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:]) or "(no output)"
        except OSError as e:
            return f"(no log: {e})"

    def stop(self) -> None:
        """Terminate the relay, killing it if it does not stop in time."""
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(STOP_TIMEOUT)


# -- the gateway ---------------------------------------------------------------

_GATEWAY_CONFIG = """\
[gateway]
name = Ponte relay benchmark
state_dir = {state}

[listen]
raw = tcp:{port}:interface={host}
https = {https}
http = {http}

[tls]
certificate = {files.certificate}
key = {files.key}

[limits]
# Generous: the benchmark opens many sessions from one address.
failed_lookups_per_minute = 100000
failed_logins_per_minute = 100000
global_failed_lookups_per_minute = 100000

[log]
level = warn
"""


@attrs.frozen
class GatewaySetup:
    """A temporary gateway state directory and how to use it."""

    config: str
    files: endpoints.TlsFiles
    port: int
    password: str = attrs.field(repr=False)
    https_port: int | None = None
    http_port: int | None = None


def make_gateway_state(directory: str, web: bool = False) -> GatewaySetup:
    """
    Make a state directory (keys, certificates, database with one operator)
    and a configuration under C{directory}, as C{ponte-admin init} does.
    With C{web}, the HTTPS and HTTP ports listen too (else they are off).
    """
    state = os.path.join(directory, "state")
    os.makedirs(state, mode=0o700)
    layout = pki.Layout(os.path.join(state, "tls"))
    pki.initialise(layout, "Ponte benchmark", names=[endpoints.SERVER_NAME, endpoints.HOST])
    files = endpoints.TlsFiles(
        ca=layout.path(layout.ca_certificate),
        certificate=layout.path(layout.gateway_certificate),
        key=layout.path(layout.gateway_key),
    )
    password = secrets.token_urlsafe(18)
    _add_operator(os.path.join(state, "ponte.sqlite3"), password)
    port, https_port, http_port = _free_ports(3) if web else (endpoints.free_port(), None, None)
    config = os.path.join(directory, "ponte.conf")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            _GATEWAY_CONFIG.format(
                state=state,
                port=port,
                host=endpoints.HOST,
                files=files,
                https=_listen(https_port),
                http=_listen(http_port),
            )
        )
    return GatewaySetup(config, files, port, password, https_port, http_port)


def _listen(port: int | None) -> str:
    """A C{[listen]} value: a port on the benchmark's host, or off."""
    return "off" if port is None else f"tcp:{port}:interface={endpoints.HOST}"


def _free_ports(count: int) -> list[int]:
    """C{count} different free ports (the kernel may hand out a port twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = endpoints.free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _add_operator(database: str, password: str) -> None:
    connection = records.open_database(database)
    try:
        schema.migrate(connection)
        records.add_operator(
            connection.cursor(),
            records.Operator(
                OPERATOR, "Benchmark operator", passwords.hash_password(password), False, False, time.time()
            ),
        )
    finally:
        connection.close()


def start_gateway(setup: GatewaySetup, directory: str) -> RelayProcess:
    """Run C{twistd -n ponte} on C{setup}'s configuration, listening."""
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    path = os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, PYTHONPATH=REPOSITORY + (os.pathsep + path if path else ""))
    gateway = RelayProcess(
        "the gateway",
        [twistd, "--nodaemon", "--pidfile=", "ponte", "--config", setup.config],
        os.path.join(directory, "gateway.log"),
        cwd=directory,
        env=env,
    )
    try:
        gateway.wait_listening(setup.port)
    except BaseException:
        gateway.stop()
        raise
    return gateway


# -- haproxy -------------------------------------------------------------------

_HAPROXY_CONFIG = """\
global
    maxconn {maxconn}
    nbthread {threads}
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-default-bind-ciphers {tls12}
    ssl-default-server-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-default-server-ciphers {tls12}

defaults
    mode tcp
    maxconn {maxconn}
    timeout connect 10s
    timeout client 10m
    timeout server 10m
"""

_HAPROXY_ROUTE = """
frontend {name}
    bind {host}:{port} ssl crt {pem}
    default_backend {name}

backend {name}
    server {name} {host}:{backend} ssl verify required ca-file {ca} verifyhost {server_name}
"""


def start_haproxy(
    files: endpoints.TlsFiles, routes: dict[str, int], directory: str, threads: int, maxconn: int
) -> tuple[RelayProcess, dict[str, int]]:
    """
    Run haproxy in TCP mode, terminating TLS on both legs with the gateway's
    certificate, one frontend per entry of C{routes} (name to backend port).
    Returns the process and each route's frontend port.
    """
    if shutil.which("haproxy") is None:
        raise BenchError("haproxy is not installed: run tools/ensure-debs haproxy (make bench does)")
    pem = os.path.join(directory, "haproxy.pem")
    with open(files.certificate, "rb") as certificate, open(files.key, "rb") as key:
        pki.write_file(pem, certificate.read() + key.read(), secret=True)
    ports = {name: endpoints.free_port() for name in routes}
    text = _HAPROXY_CONFIG.format(maxconn=maxconn, threads=threads, tls12=endpoints.TLS12_CIPHERS)
    for name, backend in routes.items():
        text += _HAPROXY_ROUTE.format(
            name=name,
            host=endpoints.HOST,
            port=ports[name],
            backend=backend,
            pem=pem,
            ca=files.ca,
            server_name=endpoints.SERVER_NAME,
        )
    config = os.path.join(directory, "haproxy.cfg")
    with open(config, "w", encoding="ascii") as f:
        f.write(text)
    haproxy = RelayProcess(
        "haproxy", ["haproxy", "-db", "-f", config], os.path.join(directory, "haproxy.log"), directory
    )
    try:
        for port in ports.values():
            haproxy.wait_listening(port)
    except BaseException:
        haproxy.stop()
        raise
    return haproxy, ports


def version(argv: list[str]) -> str:
    """The first line a program prints for C{argv} (its version), or why not."""
    try:
        output = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    return output.splitlines()[0] if output else "unknown"
