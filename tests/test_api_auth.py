"""When a 401 earns another renewal (connector.api_auth): the decision rule, against a scripted server.

The D365 sandbox tests cover the same flow over real HTTPS (tests/d365/test_client_reads.py); here the
server's view of which tokens are valid is set by hand, so the one race that decides the rule (another
request renewed, then that token was revoked) happens at a chosen moment instead of by luck.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from connector.api_auth import RefreshingAuth

NOW = 1_000_000.0


class Tokens(RefreshingAuth[str]):
    def __init__(self) -> None:
        super().__init__(margin=0, clock=lambda: NOW)
        self.sequence = 0

    async def _obtain(self, *, refused: bool) -> tuple[str, float]:
        self.sequence += 1
        return f"t{self.sequence}", NOW + 3600

    def bearer(self, token: str) -> str:
        return token


def server(
    valid: set[str], seen: list[str], on_request: Callable[[str], Awaitable[None]] | None = None
) -> httpx.AsyncClient:
    """A client whose server answers 200 to the tokens in `valid` (read at each request), 401 otherwise."""

    async def handle(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(token)
        if on_request is not None:
            await on_request(token)
        return httpx.Response(200 if token in valid else 401)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="https://api.example")


async def test_a_fresh_token_refused_is_returned_after_one_renewal() -> None:
    auth, valid, seen = Tokens(), {"t1"}, []
    async with server(valid, seen) as client:
        assert (await client.get("/", auth=auth)).status_code == 200
        valid.clear()  # the app registration was removed: no token will do
        assert (await client.get("/", auth=auth)).status_code == 401
        assert seen == ["t1", "t1", "t2"]
    assert auth.renewals == 2


async def test_a_token_another_request_renewed_and_then_revoked_earns_a_renewal_of_its_own() -> None:
    auth, valid, seen = Tokens(), {"t1"}, []

    async def meanwhile(token: str) -> None:
        if token == "t1" and "t1" not in valid:
            await auth._after_refusal("t1")  # another request met the refusal first and renewed: t2
            valid.add("t3")  # ... and t2 was revoked before this request could use it

    async with server(valid, seen, meanwhile) as client:
        assert (await client.get("/", auth=auth)).status_code == 200
        valid.clear()
        assert (await client.get("/", auth=auth)).status_code == 200
        assert seen == ["t1", "t1", "t2", "t3"]
    assert auth.renewals == 3
