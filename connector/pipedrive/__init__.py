"""Pipedrive API client: auth, paging, typed records, custom fields, webhooks.

- `factory.open_pipedrive(settings, secrets)` -> `client.PipedriveClient` (one httpx.AsyncClient over
  the shared `connector.retry` transport; one pacer per token).
- `models`: `Deal`, `DealProduct`, `Organization`, `Person`, `Product`, `FieldDefinition`,
  `WebhookEvent`, write bodies `ProductInput` / `OrganizationInput`.
- `fields.CustomFields`: hash keys <-> names, option ids <-> labels (TTL cache, refresh on unknown).
- `webhooks`: `ensure_webhook`, `verify_request` / `verify_basic_auth` / `verify_signature`, `parse_webhook`.
- `errors`: status -> typed error table, `WebhookPayloadError`, `WebhookAuthError`, `FieldResolutionError`.
"""
