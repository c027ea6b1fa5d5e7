"""
Assembly of the gateway: from a checked configuration to the
C{MultiService} that C{twistd -n ponte} runs.
"""

import os
import sqlite3

from twisted.application.service import MultiService, Service

from gateway import config as configuration
from gateway import pki
from twisted.internet.address import IPv4Address

from gateway.fasttls import BulkTLSFactory
from gateway.listener import plain_listener, tls_listener
from gateway.protocol import ConnectionLimits, GatewayFactory
from gateway.retention import RetentionService
from gateway.sniff import SniffingFactory
from gateway.store import SQLiteStore
from gateway.switchboard import Switchboard
from gateway.tunnel import TunnelLimits, TunnelRegistry
from gateway.web import WebLimits, make_site
from wire import logs, tls


class _StoreService(Service):
    """Closes the store when the gateway stops."""

    def __init__(self, store):
        self.store = store

    def stopService(self):
        super().stopService()
        self.store.close()


class _SwitchboardService(Service):
    """Stops the switchboard's timers and the tunnels when the gateway stops."""

    def __init__(self, gateway):
        self.gateway = gateway

    def stopService(self):
        super().stopService()
        self.gateway.switchboard.router.stop()
        self.gateway.tunnels.close_all()


class GatewayService(MultiService):
    """The whole gateway; its parts are attributes for tests and tools."""

    def __init__(self, config, reactor):
        super().__init__()
        self.config = config
        operator_ca = load_operator_ca(config)
        self.store = SQLiteStore(config.database)
        _StoreService(self.store).setServiceParent(self)
        self.switchboard = Switchboard(config, reactor, self.store, operator_ca=operator_ca)
        _SwitchboardService(self).setServiceParent(self)
        limits = ConnectionLimits.from_config(config)
        options = tls.server_options(
            configuration.read_file(config, "[tls] certificate", config.certificate),
            configuration.read_file(config, "[tls] key", config.key),
        )
        self.raw = self.https = None
        if config.raw_listen:
            self.raw = tls_listener(
                reactor,
                config.raw_listen,
                options,
                GatewayFactory(self.switchboard, reactor, limits, "tls"),
                "the ponte protocol over TLS",
            )
            self.raw.setServiceParent(self)
        self.tunnels = TunnelRegistry(
            BulkTLSFactory(options, False, GatewayFactory(self.switchboard, reactor, limits, "tunnel")),
            reactor,
            TunnelLimits(
                max_post=config.tunnel_max_post,
                per_address=config.tunnel_per_address,
                idle_expiry=config.tunnel_idle_expiry,
                hold=config.tunnel_hold,
                keepalive=config.tunnel_keepalive,
                high_water=config.tunnel_high_water,
            ),
            IPv4Address("TCP", "0.0.0.0", 0),
        )
        site = make_site(
            self.switchboard,
            self.tunnels,
            WebLimits(config.http_request_deadline, config.tunnel_max_post + 4096),
            reactor,
        )
        if config.https_listen:
            self.https = tls_listener(
                reactor,
                config.https_listen,
                options,
                SniffingFactory(
                    GatewayFactory(self.switchboard, reactor, limits, "https-port"),
                    site,
                    reactor,
                    config.handshake_timeout,
                ),
                "HTTPS and the ponte protocol",
            )
            self.https.setServiceParent(self)
        self.http = None
        if config.http_listen:
            self.http = plain_listener(reactor, config.http_listen, site, "HTTP (request tunnel)")
            self.http.setServiceParent(self)
        RetentionService(
            self.store, reactor, config.retention_days, config.purge_interval
        ).setServiceParent(self)


def load_operator_ca(config) -> pki.OperatorCA:
    """
    The operator CA the configuration names, loaded once at start.

    @raise configuration.ConfigError: in one line, if its files cannot be
        read, do not load, or do not match.
    """
    certificate_path, key_path = config.operator_ca_files
    certificate = configuration.read_file(config, "[tls] operator_ca_certificate", certificate_path)
    key = configuration.read_file(config, "[tls] operator_ca_key", key_path)
    try:
        return pki.parse_operator_ca(certificate, key)
    except (ValueError, TypeError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise configuration.ConfigError(
            f"{config.path}: [tls] operator_ca_certificate = {certificate_path}, "
            f"operator_ca_key = {key_path}: the operator CA's certificate and key do not load "
            f"or do not match: {reason}"
        ) from e


def make_service(config_path: str, reactor=None) -> GatewayService:
    """
    Build the gateway from the configuration file at C{config_path}.

    @raise SystemExit: with one line naming what is wrong.
    """
    if reactor is None:
        from twisted.internet import reactor
    try:
        config = configuration.load(config_path)
        logs.set_level(config.log_level)
        if not os.path.isdir(config.state_dir):
            raise configuration.ConfigError(
                f"{config_path}: [gateway] state_dir = {config.state_dir}: no such directory "
                "(run `ponte-admin init` first)"
            )
        return GatewayService(config, reactor)
    except configuration.ConfigError as e:
        raise SystemExit(f"ponte: {e}") from None
    except ValueError as e:
        raise SystemExit(f"ponte: {config_path}: [tls] certificate/key: {e}") from None
    except (RuntimeError, OSError, sqlite3.Error) as e:
        raise SystemExit(f"ponte: database {config.database}: {e}") from None
