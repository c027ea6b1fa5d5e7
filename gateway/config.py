"""
The gateway's configuration: an INI file, read and checked in one place.

Every key has a default written here and documented in C{etc/ponte.conf}.
An unknown section or key, a value of the wrong type or out of range, or an
unreadable file is a L{ConfigError} whose message names the file, the key
and what is wrong, in one line.
"""

import configparser
import os

import attrs
from twisted.internet import endpoints, reactor
from twisted.logger import LogLevel, InvalidLogLevelError


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a whole number above 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a number of seconds above 0")
    return value


def _endpoint(text: str) -> str:
    if text.strip().lower() in ("", "none", "off"):
        return ""
    try:
        endpoints.serverFromString(reactor, text)
    except Exception as e:
        raise ValueError(f"not a Twisted server endpoint description ({e})") from e
    return text


def _log_level(text: str) -> str:
    try:
        LogLevel.levelWithName(text.lower())
    except InvalidLogLevelError:
        raise ValueError("must be one of debug, info, warn, error, critical") from None
    return text.lower()


def _text(text: str) -> str:
    return text


def _hold(text: str) -> float:
    value = _seconds(text)
    if value > 25:
        raise ValueError("must be at most 25 seconds (proxies time out idle responses)")
    return value


def _certificate_hours(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_CERTIFICATE_HOURS:
        raise ValueError(f"must be a number of hours above 0 and at most {MAX_CERTIFICATE_HOURS}")
    return value


# Operator certificates are meant to be short-lived: a week at most.
MAX_CERTIFICATE_HOURS = 24 * 7


def _drift_steps(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise ValueError("must be a whole number of 30-second steps from 0 to 10")
    return value


def _on_off(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise ValueError("must be on or off")
    return text.lower() == "on"


# (section, key) -> (attribute, converter, default)
_KEYS = {
    ("gateway", "name"): ("gateway_name", _text, "Ponte gateway"),
    ("gateway", "state_dir"): ("state_dir", _text, "var"),
    ("listen", "raw"): ("raw_listen", _endpoint, "tcp:4433"),
    ("listen", "https"): ("https_listen", _endpoint, "tcp:8443"),
    ("listen", "http"): ("http_listen", _endpoint, "tcp:8080"),
    ("tunnel", "max_post"): ("tunnel_max_post", _positive_int, "262144"),
    ("tunnel", "per_address"): ("tunnel_per_address", _positive_int, "8"),
    ("tunnel", "idle_expiry"): ("tunnel_idle_expiry", _seconds, "60"),
    ("tunnel", "hold"): ("tunnel_hold", _hold, "20"),
    ("tunnel", "keepalive"): ("tunnel_keepalive", _seconds, "5"),
    ("tunnel", "high_water"): ("tunnel_high_water", _positive_int, "262144"),
    ("limits", "http_request_deadline"): ("http_request_deadline", _seconds, "10"),
    ("tls", "certificate"): ("certificate", _text, "var/tls/gateway.crt"),
    ("tls", "key"): ("key", _text, "var/tls/gateway.key"),
    ("tls", "operator_ca_certificate"): ("operator_ca_certificate", _text, ""),
    ("tls", "operator_ca_key"): ("operator_ca_key", _text, ""),
    ("operators", "certificate_hours"): ("operator_certificate_lifetime", _certificate_hours, "8"),
    ("operators", "totp_drift_steps"): ("totp_drift_steps", _drift_steps, "1"),
    ("operators", "record_sessions"): ("record_sessions", _on_off, "off"),
    ("codes", "routing_length"): ("routing_length", _positive_int, "4"),
    ("codes", "secret_length"): ("secret_length", _positive_int, "3"),
    ("codes", "validity"): ("code_validity", _seconds, "600"),
    ("codes", "max_live_codes"): ("max_live_codes", _positive_int, "100000"),
    ("codes", "confirmation_failures"): ("confirmation_failures", _positive_int, "3"),
    ("sessions", "attach_deadline"): ("attach_deadline", _seconds, "60"),
    ("sessions", "handshake_timeout"): ("handshake_timeout", _seconds, "15"),
    ("sessions", "control_idle_timeout"): ("control_idle_timeout", _seconds, "900"),
    ("sessions", "relay_idle_timeout"): ("relay_idle_timeout", _seconds, "900"),
    ("sessions", "tcp_keepalive"): ("tcp_keepalive", _on_off, "on"),
    ("limits", "preauth_max_bytes"): ("preauth_max_bytes", _positive_int, "16384"),
    ("limits", "max_box_bytes"): ("max_box_bytes", _positive_int, "262144"),
    ("limits", "pre_attach_buffer"): ("pre_attach_buffer", _positive_int, "65536"),
    ("limits", "relay_high_water"): ("relay_high_water", _positive_int, "262144"),
    ("limits", "failed_lookups_per_minute"): ("failed_lookups_per_minute", _positive_int, "5"),
    ("limits", "failed_lookup_max_backoff"): ("failed_lookup_max_backoff", _seconds, "3600"),
    ("limits", "global_failed_lookups_per_minute"): (
        "global_failed_lookups_per_minute",
        _positive_int,
        "1000",
    ),
    ("limits", "failed_logins_per_minute"): ("failed_logins_per_minute", _positive_int, "5"),
    ("retention", "connection_events_days"): ("retention_days", _positive_int, "30"),
    ("retention", "purge_interval"): ("purge_interval", _seconds, "3600"),
    ("transcripts", "key_file"): ("transcript_key_file", _text, ""),
    ("transcripts", "max_bytes"): ("max_transcript_bytes", _positive_int, "1048576"),
    ("problem_reports", "max_bytes"): ("max_problem_report_bytes", _positive_int, "1048576"),
    ("problem_reports", "per_hour"): ("problem_reports_per_hour", _positive_int, "10"),
    ("organisation", "name"): ("organisation", _text, "Example Organisation"),
    ("organisation", "terms_file"): ("terms_file", _text, ""),
    ("organisation", "terms_version"): ("terms_version", _text, "1"),
    ("organisation", "privacy_url"): ("privacy_url", _text, ""),
    ("log", "level"): ("log_level", _log_level, "info"),
}


@attrs.frozen
class GatewayConfig:
    """The checked settings of one gateway; see C{etc/ponte.conf}."""

    path: str
    gateway_name: str
    state_dir: str
    raw_listen: str
    https_listen: str
    http_listen: str
    tunnel_max_post: int
    tunnel_per_address: int
    tunnel_idle_expiry: float
    tunnel_hold: float
    tunnel_keepalive: float
    tunnel_high_water: int
    http_request_deadline: float
    certificate: str
    key: str
    operator_ca_certificate: str
    operator_ca_key: str
    operator_certificate_lifetime: float  # hours
    totp_drift_steps: int
    record_sessions: bool
    routing_length: int
    secret_length: int
    code_validity: float
    max_live_codes: int
    confirmation_failures: int
    attach_deadline: float
    handshake_timeout: float
    control_idle_timeout: float
    relay_idle_timeout: float
    tcp_keepalive: bool
    preauth_max_bytes: int
    max_box_bytes: int
    pre_attach_buffer: int
    relay_high_water: int
    failed_lookups_per_minute: int
    failed_lookup_max_backoff: float
    global_failed_lookups_per_minute: int
    failed_logins_per_minute: int
    retention_days: int
    purge_interval: float
    transcript_key_file: str
    max_transcript_bytes: int
    max_problem_report_bytes: int
    problem_reports_per_hour: int
    organisation: str
    terms_file: str
    terms_version: str
    privacy_url: str
    log_level: str

    @property
    def database(self) -> str:
        """The SQLite database file under the state directory."""
        return os.path.join(self.state_dir, "ponte.sqlite3")

    @property
    def transcript_key_path(self) -> str:
        """The key that seals transcripts: as configured, or the state directory's C{transcripts.key}."""
        return self.transcript_key_file or os.path.join(self.state_dir, "transcripts.key")

    @property
    def operator_ca_files(self) -> tuple[str, str]:
        """
        The operator CA's certificate and key files: as configured, or the
        state directory's C{tls/operator-ca.crt} and C{tls/operator-ca.key}.
        """
        tls = os.path.join(self.state_dir, "tls")
        return (
            self.operator_ca_certificate or os.path.join(tls, "operator-ca.crt"),
            self.operator_ca_key or os.path.join(tls, "operator-ca.key"),
        )

    def terms_text(self) -> str:
        """The terms the customer accepts, read from C{terms_file}."""
        if not self.terms_file:
            return DEFAULT_TERMS
        with open(self.terms_file, encoding="utf-8") as f:
            return f.read()


DEFAULT_TERMS = (
    "The operator will see and may act on this computer only as far as you "
    "allow. You can withdraw any permission, or end the session, at any time "
    "from the Ponte panel."
)


def defaults(**overrides) -> GatewayConfig:
    """A configuration of all defaults, with C{overrides} by attribute name."""
    values = {attr: convert(default) for attr, convert, default in _KEYS.values()}
    values.update(overrides)
    values.setdefault("path", "<defaults>")
    return GatewayConfig(**values)


def load(path: str) -> GatewayConfig:
    """
    Read and check the configuration file at C{path}.

    @raise ConfigError: naming the file, the key and the problem.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration: {e.strerror}") from e
    except configparser.Error as e:
        raise ConfigError(f"{path}: not a valid INI file: {e.message.splitlines()[0]}") from e

    values = {}
    for section in parser.sections():
        for key, text in parser.items(section):
            spec = _KEYS.get((section, key))
            if spec is None:
                known = sorted({s for s, _ in _KEYS})
                if section not in known:
                    raise ConfigError(
                        f"{path}: [{section}] is not a known section "
                        f"(known: {', '.join(known)})"
                    )
                raise ConfigError(f"{path}: [{section}] {key} is not a known key")
            attr, convert, _ = spec
            try:
                values[attr] = convert(text.strip())
            except ValueError as e:
                raise ConfigError(f"{path}: [{section}] {key} = {text!r}: {e}") from e
    config = defaults(path=path, **values)
    _check_files(config)
    return config


def _check_files(config: GatewayConfig) -> None:
    if config.terms_file:
        _readable(config, "[organisation] terms_file", config.terms_file)


def _readable(config: GatewayConfig, key: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise ConfigError(f"{config.path}: {key} = {path}: {e.strerror}") from e


def read_file(config: GatewayConfig, key: str, path: str) -> bytes:
    """
    The contents of a file the configuration names under C{key}.

    @raise ConfigError: naming the key and the file if it cannot be read.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"{config.path}: {key} = {path}: {e.strerror}") from e
