"""The credentials an API client owns, and the one shape of a bearer token that renews itself.

`ApiAuth` is what both clients take: an httpx.Auth they close with themselves, naming the rate-limit
budget it draws on. `RefreshingAuth` is the token both APIs use (Pipedrive OAuth, the D365 Entra ID
token): kept under a lock, renewed `margin` seconds before it expires (at most a fifth of its
lifetime, for short-lived tokens), and renewed once when the server refuses it with a 401; requests
that met the same refusal share that one renewal. A second 401 goes back to the client as is, unless
the token it refused had run out meanwhile (the retry transport sits below the auth and resends a
request after waiting out a 429 or a 5xx, so a short-lived token can expire in flight), or had been
renewed by another request before this refusal (it may have been revoked since). Only a token renewed
for this very refusal and refused while still valid is a credential problem (AuthError for the flows).
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Generic, TypeVar

import httpx

T = TypeVar("T")


class ApiAuth(httpx.Auth):
    """An API credential: `aclose()` releases what it holds (called by the client that owns it)."""

    # Requests under the same key share one rate-limit budget (a fingerprint, never the secret).
    pacing_key: str | None = None

    async def aclose(self) -> None:
        """Nothing to release unless a subclass holds connections."""


# A request renews after a 401 once, and again only when the refused token was not one renewed for it
# or had expired in flight; this bounds a clock so wrong that every token looks expired.
MAX_RENEWALS_PER_REQUEST = 3


class RefreshingAuth(ApiAuth, Generic[T]):
    """A bearer token of type T, renewed before expiry and once on a 401. Async only."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, *, margin: float, clock: Callable[[], float]) -> None:
        self._margin = margin
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: T | None = None
        self._obtained_at = 0.0
        self._expires_at = 0.0
        self.renewals = 0  # tokens obtained so far; tests and metrics read it

    @abstractmethod
    async def _obtain(self, *, refused: bool) -> tuple[T, float]:
        """A new token and when it expires (on `clock`); `refused`: the server just refused the current one."""

    @abstractmethod
    def bearer(self, token: T) -> str:
        """The token's value for the Authorization header."""

    def _apply(self, request: httpx.Request, token: T) -> None:
        request.headers["Authorization"] = f"Bearer {self.bearer(token)}"

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        margin = min(self._margin, max(0.0, self._expires_at - self._obtained_at) * 0.2)
        return self._clock() < self._expires_at - margin

    async def current_token(self) -> T:
        """A token valid for at least the margin (renewed first if needed)."""
        async with self._lock:
            if not self._fresh():
                await self._renew(refused=False)
            assert self._token is not None
            return self._token

    async def _after_refusal(self, refused: T) -> tuple[T, bool]:
        """The token to try next, and whether this call renewed it (else another request had)."""
        async with self._lock:
            renewed = self._token is None or self.bearer(self._token) == self.bearer(refused)
            if renewed:
                await self._renew(refused=True)
            assert self._token is not None
            return self._token, renewed

    async def _renew(self, *, refused: bool) -> None:
        token, expires_at = await self._obtain(refused=refused)
        self._token, self._expires_at, self._obtained_at = token, expires_at, self._clock()
        self.renewals += 1

    def _lapsed(self, sent: T) -> bool:
        """Whether `sent` stopped being the token to use while its request was under way: another
        request renewed it, or it expired (a resend after a long wait can outlive a short-lived token)."""
        if self._token is None or self.bearer(self._token) != self.bearer(sent):
            return True
        return self._clock() >= self._expires_at

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.current_token()
        self._apply(request, token)
        response = yield request
        renewed = False
        for _ in range(MAX_RENEWALS_PER_REQUEST):
            if response.status_code != 401 or (renewed and not self._lapsed(token)):
                return  # answered, or a token renewed for this refusal and still valid was refused
            token, renewed = await self._after_refusal(token)
            self._apply(request, token)
            response = yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError(f"{type(self).__name__} is async-only; use httpx.AsyncClient")
