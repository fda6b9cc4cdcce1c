"""The names of the connector's secrets, in Key Vault and in the local store alike (one place: a name
spelled two ways is a credential nobody finds). Key Vault allows only [0-9a-zA-Z-]. infra/deploy.sh stores
exactly these (tests/infra/test_deploy_script.py); the local runner's admin key is `connector.admin_key`'s."""

from __future__ import annotations


class SecretNames:
    PIPEDRIVE_API_TOKEN = "pipedrive-api-token"
    PIPEDRIVE_OAUTH_CLIENT_ID = "pipedrive-oauth-client-id"
    PIPEDRIVE_OAUTH_CLIENT_SECRET = "pipedrive-oauth-client-secret"
    PIPEDRIVE_OAUTH_REFRESH_TOKEN = "pipedrive-oauth-refresh-token"
    PIPEDRIVE_WEBHOOK_PASSWORD = "pipedrive-webhook-password"
    PIPEDRIVE_WEBHOOK_SIGNING_SECRET = "pipedrive-webhook-signing-secret"
    D365_CLIENT_SECRET = "d365-client-secret"

    @classmethod
    def all(cls) -> list[str]:
        return [value for name, value in vars(cls).items() if name.isupper()]
