"""
What the console remembers between runs: where the gateway is (name and
ports), the CA its certificate must verify against, the proxy, and the last
user name.  Never the password.  Kept as JSON in
C{$XDG_CONFIG_HOME/ponte/console.json} (C{~/.config} by default), readable
by its owner only.
"""

import json
import os
import tempfile

import attrs

from wire import logs

log = logs.logger(__name__)


def _port(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ValueError(f"not a port number: {value!r}")
    return value


def _optional_port(value):
    return None if value is None else _port(value)


def _text(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not text: {value!r}")
    return value


@attrs.frozen
class ConsoleSettings:
    """The remembered settings; every field has a default."""

    gateway: str = attrs.field(default="localhost", converter=_text)
    raw_port: int = attrs.field(default=4433, converter=_port)
    https_port: int = attrs.field(default=8443, converter=_port)
    http_port: int | None = attrs.field(default=8080, converter=_optional_port)
    ca: str = attrs.field(default="", converter=_text)
    proxy: str = attrs.field(default="", converter=_text)
    username: str = attrs.field(default="", converter=_text)


_FIELDS = {f.name for f in attrs.fields(ConsoleSettings)}


def directory(environ=os.environ) -> str:
    """The console's configuration directory."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "ponte")


def default_path(environ=os.environ) -> str:
    """Where the settings live."""
    return os.path.join(directory(environ), "console.json")


def load(path: str) -> ConsoleSettings:
    """
    The settings in C{path}; defaults for a missing or unreadable file, and
    for each value that is missing or of the wrong kind (logged).
    """
    try:
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
    except FileNotFoundError:
        return ConsoleSettings()
    except (OSError, ValueError) as e:
        log.warn("cannot read the settings in {path}: {problem}; using defaults", path=path, problem=str(e))
        return ConsoleSettings()
    if not isinstance(stored, dict):
        return ConsoleSettings()
    settings = ConsoleSettings()
    for name in _FIELDS & stored.keys():
        try:
            settings = attrs.evolve(settings, **{name: stored[name]})
        except (TypeError, ValueError) as e:
            log.warn("ignoring the setting {name} in {path}: {problem}", name=name, path=path, problem=str(e))
    return settings


def save(settings: ConsoleSettings, path: str) -> None:
    """Write C{settings} to C{path} (mode 0600, replaced atomically)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".console-", suffix=".json", dir=folder)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump(attrs.asdict(settings), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
