"""The key of the local runner's admin routes (what a function key is in Azure).

`ml-connector serve` takes it from `--admin-key` (or ML_CONNECTOR_ADMIN_KEY), else from the secret store;
on a loopback address a missing key is made and stored on first run, and shown once. A non-loopback bind
never makes one on the fly: the operator sets it first, so a public port never opens with a key that
only scrolled past in a terminal.
"""

from __future__ import annotations

import ipaddress
import re
import secrets

from connector.errors import ConfigError
from connector.redact import remember
from connector.secrets import MissingSecretError, SecretStore

SECRET_NAME = "local-admin-key"
_GOOD = re.compile(r"[A-Za-z0-9._~+/=-]{24,256}")  # what fits a header and a query string unescaped


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (or 0.0.0.0's cousins): assume reachable from outside


def check_key(key: str, source: str) -> str:
    if not _GOOD.fullmatch(key):
        raise ConfigError(f"{source}: an admin key is 24-256 characters of A-Z a-z 0-9 . _ ~ + / = -")
    remember(key)
    return key


async def resolve_admin_key(store: SecretStore, host: str, given: str | None) -> tuple[str, bool]:
    """(key, made now): the flag's key, the stored one, or a new one stored (loopback only)."""
    if given:
        return check_key(given, "--admin-key"), False
    try:
        return check_key(await store.get(SECRET_NAME), f"secret {SECRET_NAME}"), False
    except MissingSecretError:
        if not is_loopback(host):
            raise ConfigError(
                f"refusing to serve the admin routes on {host} without a key: pass --admin-key, or store one "
                f"with `ml-connector secrets set {SECRET_NAME}` (or run `serve` once on 127.0.0.1 to make one)"
            ) from None
    key = secrets.token_urlsafe(32)
    await store.set(SECRET_NAME, key)
    return check_key(key, "new key"), True
