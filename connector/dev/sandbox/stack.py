"""The embedded default: Azurite + both simulators + settings and secrets pointing at them.

`make demo` and the end-to-end tests start the connector exactly as production would (settings from
the environment, secrets from the encrypted local store, D365 tokens through azure-identity), only
against loopback stand-ins. Nothing here needs a credential from anyone.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from connector.dev.sandbox.azurite import ROOT, Azurite
from connector.dev.sandbox.d365 import D365Sandbox
from connector.dev.sandbox.pipedrive import PipedriveSandbox
from connector.secrets import LocalSecretStore, SecretNames

DEMO_MAPPING = ROOT / "config" / "demo-mapping.yaml"
WEBHOOK_USER = "pipedrive-hook"


def from_deal_mapping(folder: Path, source: Path = DEMO_MAPPING) -> Path:
    """A copy of `source` with `numbering: from_deal` (order numbers "PD<deal id>"), written into `folder`:
    the demo's second pass and the e2e tests' default configuration (the matrix covers the others)."""
    import yaml

    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["order"].update(numbering="from_deal", number_template="PD{deal_id}")
    path = folder / f"{source.stem}-from-deal.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def numbers_from_deal(mapping_file: Path) -> bool:
    """Whether the mapping makes the sales order number itself, so D365's sequence must take manual numbers."""
    from connector.mapping.config import load_mapping

    order = load_mapping(mapping_file).order
    numbering = getattr(order, "numbering", None)
    return numbering == "from_deal" if numbering is not None else order.number_template is not None


class LocalStack:
    """Start with `async with LocalStack(...) as stack:`; `stack.env` holds the app settings it made."""

    def __init__(
        self,
        *,
        pipedrive_seed: dict[str, Any] | None = None,
        d365_seed: dict[str, Any] | None = None,
        mapping_file: Path = DEMO_MAPPING,
        azurite: Azurite | None = None,
        workdir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        webhook_time_scale: float = 0.001,
        manual_order_numbers: bool | None = None,
    ) -> None:
        self._own_azurite = azurite is None
        self.azurite = azurite or Azurite()
        self.pipedrive = PipedriveSandbox(pipedrive_seed, webhook_time_scale=webhook_time_scale)
        if manual_order_numbers is None:
            manual_order_numbers = numbers_from_deal(mapping_file)
        self.d365 = D365Sandbox(d365_seed, time_factor=0.01, manual_sales_order_numbers=manual_order_numbers)
        self.mapping_file = mapping_file
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.extra_env = dict(extra_env or {})
        self.webhook_password = secrets.token_urlsafe(18)
        self.env: dict[str, str] = {}

    async def start(self) -> LocalStack:
        if self._own_azurite:
            await asyncio.to_thread(self.azurite.start)
        await self.pipedrive.start()
        await self.d365.start()
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ml-connector-")
            self.workdir = Path(self._tmp.name)
        key = Fernet.generate_key()
        secrets_file = self.workdir / "secrets.enc"
        store = LocalSecretStore(secrets_file, key)
        await store.set(SecretNames.PIPEDRIVE_API_TOKEN, self.pipedrive.api_token)
        await store.set(SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD, self.webhook_password)
        await store.set(SecretNames.D365_CLIENT_SECRET, self.d365.client_secret)
        await store.close()
        prefix = "t" + secrets.token_hex(4)
        self.env = {
            "PIPEDRIVE_COMPANY_DOMAIN": "sandbox",
            "PIPEDRIVE_AUTH_MODE": "api_token",
            "PIPEDRIVE_BASE_URL": self.pipedrive.base_url,
            "PIPEDRIVE_WEBHOOK_USER": WEBHOOK_USER,
            "D365_ENVIRONMENT_URL": self.d365.base_url,
            "D365_TENANT_ID": self.d365.tenant_id,
            "D365_CLIENT_ID": self.d365.client_id,
            "D365_DEFAULT_LEGAL_ENTITY": "usmf",
            "D365_AUTHORITY_HOST": self.d365.authority,
            "D365_CA_BUNDLE": self.d365.ca_cert_path,
            "AzureWebJobsStorage": self.azurite.connection_string,
            "LOCAL_SECRETS_FILE": str(secrets_file),
            "LOCAL_SECRETS_KEY": key.decode(),
            "TABLE_PREFIX": prefix,
            "ORDER_QUEUE": f"{prefix}-order-build",
            "MASTER_QUEUE": f"{prefix}-master-push",
            "MAPPING_FILE": str(self.mapping_file),
            "RETRY_BACKOFF_INITIAL": "0.05",
            "RETRY_BACKOFF_MAX": "0.5",
            "RETRY_JITTER": "0.05",
            "RETRY_MAX_INLINE_WAIT": "5",
            # The embedded stack's clock runs fast: short back-offs, and a settle time (after a lost D365
            # answer) that only needs to outlast the simulator's own delays.
            "RETRY_SCHEDULE_SECONDS": "1,2,5,10",
            "D365_SETTLE_SECONDS": "2",
            **self.extra_env,
        }
        return self

    def apply_env(self) -> None:
        """Put the stack's settings into this process's environment (what a Functions host does)."""
        from connector.settings import get_settings

        os.environ.update(self.env)
        get_settings.cache_clear()

    async def stop(self) -> None:
        await self.pipedrive.stop()
        await self.d365.stop()
        if self._own_azurite:
            await asyncio.to_thread(self.azurite.stop)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> LocalStack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
