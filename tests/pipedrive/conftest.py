"""A Pipedrive simulator per test (real HTTP on loopback) with a small, known data set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connector.dev.sandbox.pipedrive.ratelimit import RateLimits
from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox
from connector.pipedrive.auth import ApiTokenAuth
from connector.pipedrive.client import PipedriveClient
from connector.retry import RetryPolicy

TOKEN = "sandbox-api-token-0001"
CLIENT_ID = "ml-connector-app"
CLIENT_SECRET = "app-secret-0001"
REDIRECT = "http://127.0.0.1/callback"
REGION = "1" * 40
TAGS = "2" * 40
ORDER_NO = "3" * 40
ORG_ACCOUNT = "4" * 40
WON_DEALS = 7

# Fast retries: tests must not sleep for real backoff.
FAST = RetryPolicy(max_attempts=6, backoff_initial=0.01, backoff_max=0.05, jitter=0.01, max_inline_wait=5)


def seed() -> dict[str, Any]:
    return {
        "api_tokens": [TOKEN],
        "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT}],
        "users": [{"id": 1, "name": "Seller", "email": "seller@example.com"}],
        "pipelines": [{"id": 1, "name": "Sales", "stages": [{"id": 1, "name": "Lead"}]}],
        "currencies": [{"code": "EUR", "name": "Euro", "symbol": "€"}],
        "fields": {
            "deal": [
                {
                    "field_name": "Region",
                    "field_type": "enum",
                    "field_code": REGION,
                    "options": [{"id": 10, "label": "North"}, {"id": 11, "label": "South"}],
                },
                {
                    "field_name": "Tags",
                    "field_type": "set",
                    "field_code": TAGS,
                    "options": [{"id": 20, "label": "VIP"}, {"id": 21, "label": "Export"}],
                },
                {"field_name": "D365 order", "field_type": "varchar", "field_code": ORDER_NO},
            ],
            "organization": [{"field_name": "D365 account", "field_type": "varchar", "field_code": ORG_ACCOUNT}],
        },
        "organizations": [
            {"id": 1, "name": "Acme Oy", "address": {"value": "Main st 1, Helsinki", "country": "Finland"}},
        ],
        "persons": [
            {"id": 1, "name": "Aino Buyer", "org_id": 1, "emails": [{"value": "aino@acme.fi", "primary": True}]}
        ],
        "products": [
            {"id": 1, "name": "Widget", "code": "W-100", "prices": [{"price": 10, "currency": "EUR"}]},
            {"id": 2, "name": "Gadget", "code": "G-200", "prices": [{"price": 25, "currency": "EUR"}]},
            {"id": 3, "name": "Gizmo", "code": "g-300", "prices": [{"price": 5, "currency": "EUR"}]},
        ],
        "deals": [
            *[
                {
                    "id": 100 + i,
                    "title": f"Won deal {i}",
                    "status": "won",
                    "org_id": 1,
                    "person_id": 1,
                    "currency": "EUR",
                    "update_time": f"2026-11-0{1 + i}T10:00:00Z",
                    "products": [{"product_id": 1, "item_price": 10, "quantity": 1 + i}],
                }
                for i in range(WON_DEALS)
            ],
            {"id": 200, "title": "Open deal", "status": "open", "org_id": 1, "currency": "EUR"},
            {
                "id": 201,
                "title": "Two lines",
                "status": "open",
                "org_id": 1,
                "currency": "EUR",
                "products": [
                    {"product_id": 1, "item_price": 10, "quantity": 2},
                    {"product_id": 2, "item_price": 25, "quantity": 1},
                ],
            },
        ],
    }


@pytest.fixture
async def pd() -> AsyncIterator[PipedriveSandbox]:
    async with PipedriveSandbox(seed(), webhook_time_scale=0.001) as sandbox:
        yield sandbox


@pytest.fixture
async def client(pd: PipedriveSandbox) -> AsyncIterator[PipedriveClient]:
    async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as c:
        yield c


def tight(**overrides: Any) -> RateLimits:
    return RateLimits(**overrides)
