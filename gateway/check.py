"""
C{ponte-admin check}: reach a running gateway the way a client does
(verified TLS, then C{Hello}) and say what was negotiated.  It consumes
nothing, changes nothing and counts as no failed attempt.
"""

import attrs

from wire import cli, client, commands


@attrs.frozen
class CheckResult:
    """What a successful check saw."""

    gateway: str
    tls_version: str
    group: str
    cipher: str


class CheckFailed(Exception):
    """The gateway could not be reached or did not answer as it should."""


def raw_port(description: str) -> int:
    """The port of a C{tcp:PORT[:...]} listen description."""
    parts = description.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        raise CheckFailed(f"cannot tell the port from the listen description {description!r}")
    return int(parts[1])


async def check(reactor, host: str, port: int, ca_pem: bytes) -> CheckResult:
    """
    Connect to the gateway at C{host}:C{port} trusting C{ca_pem} and
    exchange C{Hello}.

    @raise CheckFailed: saying what went wrong.
    """
    try:
        connection = await client.connect(reactor, host, port, ca_pem, timeout=10)
    except Exception as e:
        raise CheckFailed(f"cannot connect to {host}:{port}: {e}") from e
    try:
        hello = await connection.hello(commands.ROLE_AGENT)
        tls = connection.transport.getHandle()
        return CheckResult(
            gateway=hello["gateway"],
            tls_version=tls.get_protocol_version_name(),
            group=tls.get_group_name() or "",
            cipher=tls.get_cipher_name(),
        )
    except Exception as e:
        if "certificate verify failed" in str(e):
            raise CheckFailed(
                f"the certificate of {host}:{port} does not verify against the CA given "
                "(a wrong CA, a wrong name, or a proxy intercepting TLS)"
            ) from e
        raise CheckFailed(f"{host}:{port} answered, but not as a Ponte gateway should: {e}") from e
    finally:
        connection.transport.loseConnection()
        await connection.lost


def run(host: str, port: int, ca_pem: bytes) -> CheckResult:
    """Run L{check} on a reactor of its own; for the command line."""
    return cli.run(check, host, port, ca_pem)
