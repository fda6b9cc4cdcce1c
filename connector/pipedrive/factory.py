"""Build a PipedriveClient from the settings object and the secret store (one place for wiring)."""

from __future__ import annotations

from typing import Protocol

import httpx

from connector.api_auth import ApiAuth
from connector.errors import ConfigError
from connector.pipedrive.auth import ApiTokenAuth, OAuth2RefreshAuth
from connector.pipedrive.client import PipedriveClient
from connector.retry import RetryPolicy
from connector.secret_names import SecretNames


class PipedriveSettings(Protocol):
    """The attributes of connector.settings.Settings this factory reads."""

    @property
    def pipedrive_company_domain(self) -> str: ...
    @property
    def pipedrive_auth_mode(self) -> str: ...
    @property
    def pipedrive_base_url(self) -> str | None: ...
    @property
    def pipedrive_oauth_token_url(self) -> str: ...
    def retry_policy(self) -> RetryPolicy: ...


class Secrets(Protocol):
    async def get(self, name: str) -> str: ...
    async def set(self, name: str, value: str) -> None: ...


def base_url_for(settings: PipedriveSettings) -> str:
    """Explicit PIPEDRIVE_BASE_URL (sandbox, proxy) or the company domain, as Pipedrive advises."""
    return (settings.pipedrive_base_url or f"https://{settings.pipedrive_company_domain}.pipedrive.com").rstrip("/")


async def open_pipedrive(
    settings: PipedriveSettings,
    secrets: Secrets,
    *,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    http_timeout: float = 30,
) -> PipedriveClient:
    """A ready client for the configured auth mode; secrets are read now, never logged.
    `policy` overrides `settings.retry_policy()`."""
    mode = settings.pipedrive_auth_mode
    auth: ApiAuth
    policy = policy or settings.retry_policy()
    if mode == "api_token":
        auth = ApiTokenAuth(await secrets.get(SecretNames.PIPEDRIVE_API_TOKEN))
    elif mode == "oauth":
        auth = OAuth2RefreshAuth(
            token_url=settings.pipedrive_oauth_token_url,
            client_id=await secrets.get(SecretNames.PIPEDRIVE_OAUTH_CLIENT_ID),
            client_secret=await secrets.get(SecretNames.PIPEDRIVE_OAUTH_CLIENT_SECRET),
            refresh_token=await secrets.get(SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN),
            store=secrets,
            # An explicit base URL (sandbox, egress proxy) wins; otherwise follow the token's api_domain.
            follow_api_domain=settings.pipedrive_base_url is None,
            transport=transport,
            policy=policy,
            timeout=http_timeout,
        )
    else:
        raise ConfigError(f"PIPEDRIVE_AUTH_MODE must be 'api_token' or 'oauth', not {mode!r}")
    return PipedriveClient(base_url_for(settings), auth, policy=policy, transport=transport, timeout=http_timeout)
