"""All configuration in one validated object, read from flat environment variables.

The names are the Azure app-setting names (also what `local.settings.json` "Values" holds), so the
same object works in Azure, under Core Tools, in the local runner and in tests. A missing or bad
setting fails at start with ONE message naming every offending setting; values are never echoed,
and every secret-like value is a `SecretStr`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from connector.errors import ConfigError
from connector.host_json import host_json
from connector.retry import RetryPolicy
from connector.validation import problems

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from connector.flows.runner import Lifecycle

# Azurite's documented well-known development account, used for `UseDevelopmentStorage=true`.
_DEV_ACCOUNT = "devstoreaccount1"
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEV_STORAGE_CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName={_DEV_ACCOUNT};AccountKey={_DEV_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{_DEV_ACCOUNT};QueueEndpoint=http://127.0.0.1:10001/{_DEV_ACCOUNT};"
    f"TableEndpoint=http://127.0.0.1:10002/{_DEV_ACCOUNT};"
)

_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,54}[a-z0-9]$")  # leaves room for "-poison"
_TABLE_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]{0,40})?$")
_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$", re.IGNORECASE)


def _env(name: str) -> AliasChoices:
    """Accept the app-setting name (what Azure sets) and the field name (handy in tests)."""
    return AliasChoices(name, name.lower())


class StorageTarget(BaseModel):
    """Where Tables and Queues live: a connection string, or service URLs used with an Entra identity."""

    model_config = ConfigDict(frozen=True)

    connection_string: SecretStr | None = None
    table_endpoint: str | None = None
    queue_endpoint: str | None = None
    managed_identity_client_id: str | None = None

    def credential(self) -> AsyncTokenCredential:
        """An async token credential for the identity-based form (lazy import: heavy)."""
        from azure.identity.aio import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.managed_identity_client_id)


class TableNames(BaseModel):
    model_config = ConfigDict(frozen=True)

    jobs: str = "jobs"
    audit: str = "audit"
    idmap: str = "idmap"
    checkpoints: str = "checkpoints"

    @classmethod
    def with_prefix(cls, prefix: str) -> TableNames:
        return cls(
            jobs=f"{prefix}jobs", audit=f"{prefix}audit", idmap=f"{prefix}idmap", checkpoints=f"{prefix}checkpoints"
        )


class Settings(BaseSettings):
    """Every setting of the connector; see local.settings.json.example for a filled-in set."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, frozen=True, env_ignore_empty=True
    )

    # --- Pipedrive
    pipedrive_company_domain: str = Field(validation_alias=_env("PIPEDRIVE_COMPANY_DOMAIN"))
    pipedrive_auth_mode: Literal["api_token", "oauth"] = Field(
        "api_token", validation_alias=_env("PIPEDRIVE_AUTH_MODE")
    )
    pipedrive_base_url: str | None = Field(None, validation_alias=_env("PIPEDRIVE_BASE_URL"))
    pipedrive_oauth_token_url: str = Field(
        "https://oauth.pipedrive.com/oauth/token", validation_alias=_env("PIPEDRIVE_OAUTH_TOKEN_URL")
    )
    pipedrive_webhook_user: str = Field(validation_alias=_env("PIPEDRIVE_WEBHOOK_USER"))
    # Optional HMAC signature header name: Pipedrive's signing scheme is UNCONFIRMED (docs/api-facts.md, Pipedrive §8), so off by default.
    pipedrive_webhook_signature_header: str | None = Field(
        None, validation_alias=_env("PIPEDRIVE_WEBHOOK_SIGNATURE_HEADER")
    )

    # --- Dynamics 365 F&O
    d365_environment_url: str = Field(validation_alias=_env("D365_ENVIRONMENT_URL"))
    d365_tenant_id: str = Field(validation_alias=_env("D365_TENANT_ID"))
    d365_client_id: str = Field(validation_alias=_env("D365_CLIENT_ID"))
    d365_default_legal_entity: str = Field(validation_alias=_env("D365_DEFAULT_LEGAL_ENTITY"))
    d365_credential: Literal["client_secret", "managed_identity", "certificate"] = Field(
        "client_secret", validation_alias=_env("D365_CREDENTIAL")
    )
    d365_certificate_path: Path | None = Field(None, validation_alias=_env("D365_CERTIFICATE_PATH"))
    d365_authority_host: str | None = Field(None, validation_alias=_env("D365_AUTHORITY_HOST"))  # sandbox only
    d365_ca_bundle: Path | None = Field(None, validation_alias=_env("D365_CA_BUNDLE"))  # sandbox self-signed cert

    # --- Storage: connection string, or identity-based (AzureWebJobsStorage__*), exactly like the Functions host
    storage_connection_string: SecretStr | None = Field(None, validation_alias=_env("AzureWebJobsStorage"))
    storage_account_name: str | None = Field(None, validation_alias=_env("AzureWebJobsStorage__accountName"))
    storage_queue_service_uri: str | None = Field(None, validation_alias=_env("AzureWebJobsStorage__queueServiceUri"))
    storage_table_service_uri: str | None = Field(None, validation_alias=_env("AzureWebJobsStorage__tableServiceUri"))
    storage_client_id: str | None = Field(None, validation_alias=_env("AzureWebJobsStorage__clientId"))

    # --- Secrets
    key_vault_url: str | None = Field(None, validation_alias=_env("KEY_VAULT_URL"))
    local_secrets_file: Path = Field(Path(".ml-connector/secrets.enc"), validation_alias=_env("LOCAL_SECRETS_FILE"))
    local_secrets_key: SecretStr | None = Field(None, validation_alias=_env("LOCAL_SECRETS_KEY"))
    local_secrets_key_file: Path | None = Field(None, validation_alias=_env("LOCAL_SECRETS_KEY_FILE"))
    secret_cache_seconds: float = Field(300.0, ge=0, validation_alias=_env("SECRET_CACHE_SECONDS"))

    # --- Queues and tables
    order_queue: str = Field("order-build", validation_alias=_env("ORDER_QUEUE"))
    master_queue: str = Field("master-push", validation_alias=_env("MASTER_QUEUE"))
    table_prefix: str = Field("", validation_alias=_env("TABLE_PREFIX"))
    # The host's poison threshold, read from host.json; MAX_DEQUEUE_COUNT may only repeat it.
    max_dequeue_count: int = Field(
        host_json().queues.max_dequeue_count, ge=1, validation_alias=_env("MAX_DEQUEUE_COUNT")
    )
    # Outlives host.json functionTimeout (10 min), so a live worker is never overtaken; renewed while it works.
    job_lease_seconds: float = Field(660, ge=1, validation_alias=_env("JOB_LEASE_SECONDS"))
    # A queued/running job untouched this long may be enqueued again (its message may have been lost).
    job_stale_seconds: int = Field(3600, ge=60, validation_alias=_env("JOB_STALE_SECONDS"))
    # Transient failures re-queue after these delays (the last repeats) until the horizon; then the job fails.
    retry_schedule_seconds: str = Field("30,120,600,1800,3600", validation_alias=_env("RETRY_SCHEDULE_SECONDS"))
    retry_horizon_seconds: float = Field(86400, ge=0, validation_alias=_env("RETRY_HORIZON_SECONDS"))
    # After a lost answer on a D365 create, look again only after this (longer than D365's own timeout).
    d365_settle_seconds: float = Field(900, ge=0, validation_alias=_env("D365_SETTLE_SECONDS"))
    d365_timeout_seconds: float = Field(60, gt=0, validation_alias=_env("D365_TIMEOUT_SECONDS"))
    # The reconciler: how often it runs, and how long a queued/running job may sit without a live lease.
    reconcile_schedule: str = Field("30 */5 * * * *", validation_alias=_env("RECONCILE_SCHEDULE"))
    reconcile_grace_seconds: float = Field(900, ge=0, validation_alias=_env("RECONCILE_GRACE_SECONDS"))

    # --- Poll and mapping
    poll_schedule: str = Field("0 */5 * * * *", validation_alias=_env("POLL_SCHEDULE"))
    # The master diff (D365 products/customers -> Pipedrive); hourly by default: events carry single changes.
    master_schedule: str = Field("0 0 * * * *", validation_alias=_env("MASTER_SCHEDULE"))
    # The diff pushes what it read, this many records at once, for at most this long (a timer run must
    # end before functionTimeout); what is left goes to the master queue. 0: queue everything.
    master_push_concurrency: int = Field(8, ge=1, le=64, validation_alias=_env("MASTER_PUSH_CONCURRENCY"))
    master_inline_seconds: float = Field(300.0, ge=0, validation_alias=_env("MASTER_INLINE_SECONDS"))
    # How far back a push's find-before-create reads recently changed Pipedrive records directly,
    # for records the Search API's index may not show yet (its lag is UNCONFIRMED).
    pipedrive_search_lag_seconds: float = Field(3600.0, ge=0, validation_alias=_env("PIPEDRIVE_SEARCH_LAG_SECONDS"))
    poll_overlap_seconds: int = Field(120, ge=0, validation_alias=_env("POLL_OVERLAP_SECONDS"))
    # Also list archived won deals (Pipedrive's /deals leaves them out): a deal won and archived while its
    # webhook was lost is otherwise never seen. Costs 20 more tokens a poll; false trades that safety away.
    poll_archived: bool = Field(True, validation_alias=_env("POLL_ARCHIVED"))
    mapping_file: Path = Field(Path("config/mapping.yaml"), validation_alias=_env("MAPPING_FILE"))

    # --- Outbound retry policy (connector.retry.RetryPolicy)
    retry_max_attempts: int = Field(6, ge=1, validation_alias=_env("RETRY_MAX_ATTEMPTS"))
    retry_backoff_initial: float = Field(0.5, ge=0, validation_alias=_env("RETRY_BACKOFF_INITIAL"))
    retry_backoff_max: float = Field(20.0, ge=0, validation_alias=_env("RETRY_BACKOFF_MAX"))
    retry_jitter: float = Field(0.5, ge=0, validation_alias=_env("RETRY_JITTER"))
    retry_max_inline_wait: float = Field(30.0, ge=0, validation_alias=_env("RETRY_MAX_INLINE_WAIT"))
    retry_pace_below_remaining: int = Field(0, ge=0, validation_alias=_env("RETRY_PACE_BELOW_REMAINING"))
    # Instances (processes) drawing on one Pipedrive token at once: the Function App's maximumInstanceCount.
    pipedrive_instances: int = Field(1, ge=1, validation_alias=_env("PIPEDRIVE_INSTANCES"))

    @field_validator("pipedrive_company_domain")
    @classmethod
    def company_domain_only(cls, value: str) -> str:
        if not _DOMAIN.match(value):
            raise ValueError("must be the company subdomain only, e.g. 'acme' for acme.pipedrive.com")
        return value

    @field_validator("d365_environment_url", "pipedrive_base_url", "pipedrive_oauth_token_url", "key_vault_url")
    @classmethod
    def absolute_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("order_queue", "master_queue")
    @classmethod
    def valid_queue_name(cls, value: str) -> str:
        if not _QUEUE_NAME.match(value):
            raise ValueError("must be 3-56 chars of lowercase letters, digits and single hyphens")
        return value

    @field_validator("max_dequeue_count")
    @classmethod
    def same_as_host_json(cls, value: int) -> int:
        hosts = host_json().queues.max_dequeue_count
        if value != hosts:
            raise ValueError(
                f"must equal host.json maxDequeueCount ({hosts}), after which the Functions host moves a message "
                "to the poison queue; change host.json instead (this setting is read from it)"
            )
        return value

    @field_validator("table_prefix")
    @classmethod
    def valid_table_prefix(cls, value: str) -> str:
        if not _TABLE_PREFIX.match(value):
            raise ValueError("must be empty or letters/digits starting with a letter (Azure table name rules)")
        return value

    @field_validator("retry_schedule_seconds")
    @classmethod
    def valid_retry_schedule(cls, value: str) -> str:
        try:
            steps = [float(part) for part in value.split(",")]
        except ValueError:
            raise ValueError("must be comma-separated seconds, e.g. 30,120,600,1800,3600") from None
        if not steps or any(step < 0 or step > 7 * 24 * 3600 for step in steps):
            raise ValueError("each delay must be between 0 and 604800 seconds (Queue Storage's maximum)")
        return value

    @field_validator("poll_schedule", "master_schedule", "reconcile_schedule")
    @classmethod
    def six_field_ncrontab(cls, value: str) -> str:
        if len(value.split()) != 6:
            raise ValueError("must be an NCRONTAB expression with 6 fields (sec min hour day month weekday)")
        return value

    @model_validator(mode="after")
    def storage_and_credential_complete(self) -> Settings:
        has_identity = bool(
            self.storage_account_name or self.storage_queue_service_uri or self.storage_table_service_uri
        )
        if self.storage_connection_string is None and not has_identity:
            raise ValueError(
                "storage is not configured: set AzureWebJobsStorage (connection string) or "
                "AzureWebJobsStorage__accountName / AzureWebJobsStorage__queueServiceUri + __tableServiceUri"
            )
        if self.storage_connection_string is None and not self.storage_account_name:  # noqa: SIM102
            if not (self.storage_queue_service_uri and self.storage_table_service_uri):
                raise ValueError(
                    "AzureWebJobsStorage__queueServiceUri and AzureWebJobsStorage__tableServiceUri must both be "
                    "set (or AzureWebJobsStorage__accountName)"
                )
        if self.d365_credential == "certificate" and self.d365_certificate_path is None:
            raise ValueError("D365_CERTIFICATE_PATH is required when D365_CREDENTIAL=certificate")
        return self

    # --- Derived views
    @property
    def pipedrive_api_base(self) -> str:
        return self.pipedrive_base_url or f"https://{self.pipedrive_company_domain}.pipedrive.com"

    @property
    def tables(self) -> TableNames:
        return TableNames.with_prefix(self.table_prefix)

    @property
    def storage(self) -> StorageTarget:
        if self.storage_connection_string is not None:
            conn = self.storage_connection_string.get_secret_value()
            if conn.strip().lower().startswith("usedevelopmentstorage=true"):
                conn = DEV_STORAGE_CONNECTION_STRING
            return StorageTarget(connection_string=SecretStr(conn))
        account = self.storage_account_name
        return StorageTarget(
            table_endpoint=self.storage_table_service_uri or f"https://{account}.table.core.windows.net",
            queue_endpoint=self.storage_queue_service_uri or f"https://{account}.queue.core.windows.net",
            managed_identity_client_id=self.storage_client_id,
        )

    def lifecycle(self) -> Lifecycle:
        from connector.flows.runner import Lifecycle

        return Lifecycle(
            lease_seconds=self.job_lease_seconds,
            schedule=tuple(float(part) for part in self.retry_schedule_seconds.split(",")),
            horizon=self.retry_horizon_seconds,
            settle=self.d365_settle_seconds,
            max_takeovers=self.max_dequeue_count,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.retry_max_attempts,
            backoff_initial=self.retry_backoff_initial,
            backoff_max=self.retry_backoff_max,
            jitter=self.retry_jitter,
            max_inline_wait=self.retry_max_inline_wait,
            pace_below_remaining=self.retry_pace_below_remaining,
            instances=self.pipedrive_instances,
        )


# Env name per field, for error messages.
_ENV_NAMES: dict[str, str] = {
    name: str(field.validation_alias.choices[0])
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
}


def env_names() -> list[str]:
    """Every environment variable Settings reads, by its app-setting name (matched case-insensitively)."""
    return list(_ENV_NAMES.values())


def describe_errors(exc: PydanticValidationError) -> str:
    """One line per bad setting, by its env name, WITHOUT the offending value (it may be a secret)."""
    lines: list[str] = []
    for problem in problems(exc):
        field = str(problem.loc[0]) if problem.loc else ""
        name = _ENV_NAMES.get(field, field)
        if problem.kind == "missing":
            lines.append(f"{name} is missing")
        else:
            lines.append(f"{name}: {problem.message}" if name else problem.message)
    return "invalid configuration: " + "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment (plus overrides), turning validation errors into ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except PydanticValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call `get_settings.cache_clear()` after changing env."""
    return load_settings()
