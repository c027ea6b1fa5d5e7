"""
The structure of the system information an agent sends on request
(L{wire.session_commands.GetSystemInfo}), with conversion to and from the
plain JSON it travels as.  Unknown keys are ignored and missing ones take
their defaults, so either end may be newer.
"""

import typing

import attrs


@attrs.frozen
class Cpu:
    """The processor."""

    model: str = ""
    cores: int = 0
    percent: float = 0.0


@attrs.frozen
class Memory:
    """Memory and swap, in bytes."""

    total: int = 0
    available: int = 0
    swap_total: int = 0
    swap_used: int = 0


@attrs.frozen
class Disk:
    """One mounted file system, sizes in bytes."""

    mount: str = ""
    device: str = ""
    filesystem: str = ""
    total: int = 0
    used: int = 0


@attrs.frozen
class NetworkInterface:
    """One network interface and its addresses."""

    name: str = ""
    addresses: tuple[str, ...] = ()
    up: bool = False


@attrs.frozen
class User:
    """A logged-in user."""

    name: str = ""
    terminal: str = ""
    since: float = 0.0


@attrs.frozen
class Process:
    """A running process."""

    pid: int = 0
    name: str = ""
    user: str = ""
    cpu_percent: float = 0.0
    memory_bytes: int = 0


@attrs.frozen
class Package:
    """An installed package."""

    name: str = ""
    version: str = ""


@attrs.frozen
class SystemInfo:
    """Everything the agent tells about the customer's computer."""

    os: str = ""
    os_version: str = ""
    hostname: str = ""
    uptime: float = 0.0
    cpu: Cpu = Cpu()
    memory: Memory = Memory()
    disks: tuple[Disk, ...] = ()
    interfaces: tuple[NetworkInterface, ...] = ()
    users: tuple[User, ...] = ()
    processes: tuple[Process, ...] = ()
    packages: tuple[Package, ...] = ()
    log_lines: tuple[str, ...] = ()


class MalformedSystemInfo(ValueError):
    """The JSON does not have the structure of L{SystemInfo}."""


def to_json(info) -> object:
    """C{info} (any of the classes above) as plain JSON values."""
    if attrs.has(type(info)):
        return {f.name: to_json(getattr(info, f.name)) for f in attrs.fields(type(info))}
    if isinstance(info, tuple):
        return [to_json(item) for item in info]
    return info


def _convert(kind, value, where: str):
    if attrs.has(kind):
        if not isinstance(value, dict):
            raise MalformedSystemInfo(f"{where} should be an object")
        hints = typing.get_type_hints(kind)
        return kind(
            **{
                f.name: _convert(hints[f.name], value[f.name], f"{where}.{f.name}")
                for f in attrs.fields(kind)
                if f.name in value
            }
        )
    if typing.get_origin(kind) is tuple:
        if not isinstance(value, list):
            raise MalformedSystemInfo(f"{where} should be a list")
        item = typing.get_args(kind)[0]
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedSystemInfo(f"{where} should be {kind.__name__}")
    return value


def from_json(value) -> SystemInfo:
    """
    A L{SystemInfo} from plain JSON values.

    @raise MalformedSystemInfo: naming the first value of the wrong type.
    """
    return _convert(SystemInfo, value, "info")
