"""Pipedrive API client: auth, paging, typed records, custom fields, webhooks."""
