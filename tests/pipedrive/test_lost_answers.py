"""A Pipedrive create is never sent twice when it may already have been done: it has no idempotency key.

Over real HTTP against the simulator: the create reaches Pipedrive and is saved, but its answer comes
too late for the client (an injected server latency past the client's timeout). Before, the retry
transport sent it again and Pipedrive held two products. A create is resent only when Pipedrive said
it did nothing (429, 503); a read or an update is resent after any transient failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from connector.dev.sandbox.pipedrive.sandbox import PipedriveSandbox
from connector.errors import ProtocolError, RateLimitedError, TransientError, UnknownOutcomeError
from connector.pipedrive.auth import ApiTokenAuth
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.models import OrganizationInput, ProductInput

from .conftest import FAST, TOKEN, seed

Create = Callable[[PipedriveClient], Awaitable[object]]
CREATES: dict[str, tuple[str, str, Create]] = {
    "product": ("/api/v2/products", "product", lambda c: c.create_product(ProductInput(name="Lost", code="L-1"))),
    "organization": (
        "/api/v2/organizations",
        "organization",
        lambda c: c.create_organization(OrganizationInput(name="Lost")),
    ),
}


def named(pd: PipedriveSandbox, table: str, name: str) -> list[int]:
    return [i for i, r in pd.sim.store.tables[table].items() if r.get("name") == name]


def posts(pd: PipedriveSandbox, path: str) -> list[dict[str, object]]:
    return [e for e in pd.requests() if e["method"] == "POST" and e["path"] == path]


@pytest.mark.parametrize("kind", list(CREATES))
async def test_a_create_whose_answer_is_lost_is_not_sent_again(kind: str) -> None:
    path, table, create = CREATES[kind]
    async with PipedriveSandbox(seed()) as pd:
        pd.inject_fault(path, None, latency=0.4, method="POST")  # saved, but answered after the client gave up
        async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST, timeout=0.1) as client:
            with pytest.raises(UnknownOutcomeError, match="answer lost"):
                await create(client)
        sent = len(posts(pd, path))
    # The sandbox has stopped: the late request finished first (a graceful shutdown waits for it).
    assert sent == 1
    assert len(named(pd, table, "Lost")) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_create_that_met_a_gateway_error_is_not_sent_again(status: int) -> None:
    async with PipedriveSandbox(seed()) as pd:
        pd.inject_fault("/api/v2/products", status, method="POST")
        async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
            with pytest.raises(UnknownOutcomeError) as lost:
                await client.create_product(ProductInput(name="Lost", code="L-1"))
        assert lost.value.status == status and len(posts(pd, "/api/v2/products")) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_a_create_pipedrive_said_it_did_not_do_is_sent_again(status: int) -> None:
    async with PipedriveSandbox(seed()) as pd:
        pd.inject_fault("/api/v2/products", status, times=2, method="POST", headers={"Retry-After": "0"})
        async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
            created = await client.create_product(ProductInput(name="Resent", code="R-1"))
        assert [e["status"] for e in posts(pd, "/api/v2/products")] == [status, status, 201]
        assert named(pd, "product", "Resent") == [created.id]


async def test_a_create_refused_every_time_is_a_plain_transient_error() -> None:
    async with PipedriveSandbox(seed()) as pd:
        pd.inject_fault("/api/v2/products", 429, times=10, method="POST", headers={"Retry-After": "0"})
        async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
            with pytest.raises(TransientError) as refused:
                await client.create_product(ProductInput(name="Refused", code="X-1"))
        assert type(refused.value) is RateLimitedError  # not UnknownOutcomeError: nothing was saved
        assert len(posts(pd, "/api/v2/products")) == FAST.max_attempts


async def test_an_update_whose_answer_is_lost_is_sent_again() -> None:
    async with PipedriveSandbox(seed()) as pd:
        pd.inject_fault("/api/v2/products/1", None, latency=0.4, method="PATCH")
        async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST, timeout=0.1) as client:
            updated = await client.update_product(1, ProductInput(name="Widget v2"))
        assert updated.name == "Widget v2"
        assert len([e for e in pd.requests() if e["method"] == "PATCH"]) >= 2


@pytest.mark.parametrize(
    "body", ["<html>gateway maintenance</html>", {"success": True}, {"success": True, "data": {"name": "no id"}}]
)
async def test_a_create_saved_but_answered_unreadably_may_have_been_done(body: object) -> None:
    """A 2xx whose body is not the record (a proxy's page, no data, the wrong shape): Pipedrive may have
    saved it, so it is UnknownOutcomeError (look before creating again), not a ProtocolError a replay
    would create past. An update answered the same way stays a ProtocolError: sending it again is safe."""
    async with PipedriveSandbox(seed()) as pd:
        pd.inject_fault("/api/v2/products", 200, body=body, method="POST", after=True)
        pd.inject_fault("/api/v2/products/1", 200, body=body, method="PATCH", after=True)
        async with PipedriveClient(pd.base_url, ApiTokenAuth(TOKEN), policy=FAST) as client:
            with pytest.raises(UnknownOutcomeError, match="may have been saved"):
                await client.create_product(ProductInput(name="Garbled", code="G-1"))
            with pytest.raises(ProtocolError) as update:
                await client.update_product(1, ProductInput(name="Widget v2"))
        assert type(update.value) is ProtocolError
        assert len(posts(pd, "/api/v2/products")) == 1 and len(named(pd, "product", "Garbled")) == 1
