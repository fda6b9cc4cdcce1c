"""Pipedrive credentials as httpx.Auth flows: an API token, or OAuth2 with refresh.

OAuth facts (reference/pipedrive-api.md section 2): the token endpoint takes a form body with
Basic client auth; access tokens live ~60 min (`expires_in`); the response names `api_domain`, the
company host requests must go to; the same refresh token comes back (no rotation), but we still
save it whenever it differs, so a future rotation cannot lock us out.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from connector.errors import AuthError, ProtocolError, TransientError
from connector.pipedrive.errors import api_messages
from connector.retry import RetryPolicy, RetryTransport

REFRESH_TOKEN_SECRET = "pipedrive-oauth-refresh-token"


class SecretWriter(Protocol):
    """The part of connector.secrets.SecretStore that auth needs."""

    async def set(self, name: str, value: str) -> None: ...


def _fingerprint(*parts: str) -> str:
    """A stable, non-reversible key for per-credential state (the pacer); never the secret itself."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class ApiTokenAuth(httpx.Auth):
    """`x-api-token` header on every request (the `?api_token=` query form is deprecated)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise AuthError("Pipedrive API token is empty")
        self._token = token
        self.pacing_key = _fingerprint("api_token", token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-token"] = self._token
        yield request

    def __repr__(self) -> str:  # never show the token
        return "ApiTokenAuth(<redacted>)"


class TokenResponse(BaseModel):
    """`POST /oauth/token` response (SPEC-v1 example)."""

    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    token_type: str = "Bearer"
    expires_in: float = Field(gt=0)
    refresh_token: str | None = None
    scope: str | None = None
    api_domain: str | None = None


class OAuth2RefreshAuth(httpx.Auth):
    """Bearer token kept fresh: refreshed `margin` seconds before expiry, and once on a 401.

    With `follow_api_domain`, each request is re-targeted to the token's `api_domain` host (the
    official SDK resets its base path the same way after every token update). A second 401 after a
    renewal is returned as is; the client turns it into AuthError.
    """

    requires_response_body = False

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        store: SecretWriter | None = None,
        refresh_token_secret: str = REFRESH_TOKEN_SECRET,
        margin: float = 60.0,
        follow_api_domain: bool = True,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not (client_id and client_secret and refresh_token):
            raise AuthError("Pipedrive OAuth needs a client id, client secret and refresh token")
        self._token_url = token_url
        self._client_auth = httpx.BasicAuth(client_id, client_secret)
        self._refresh_token = refresh_token
        self._store = store
        self._secret_name = refresh_token_secret
        self._margin = margin
        self._follow_api_domain = follow_api_domain
        self._clock = clock
        self._transport = transport
        self._policy = policy or RetryPolicy(max_attempts=3)
        self._timeout = timeout
        self._token: TokenResponse | None = None
        self._http: httpx.AsyncClient | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.pacing_key = _fingerprint("oauth", client_id, refresh_token)
        self.refresh_count = 0

    def __repr__(self) -> str:
        return "OAuth2RefreshAuth(<redacted>)"

    @property
    def api_domain(self) -> str | None:
        return self._token.api_domain if self._token else None

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2RefreshAuth is async-only; use httpx.AsyncClient")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.current_token()
        self._apply(request, token)
        response = yield request
        if response.status_code == 401:
            token = await self._renew(stale=token.access_token)
            self._apply(request, token)
            yield request

    async def current_token(self) -> TokenResponse:
        """A token valid for at least `margin` more seconds (refreshing if needed)."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                await self._refresh_locked()
            assert self._token is not None
            return self._token

    async def _renew(self, *, stale: str) -> TokenResponse:
        async with self._lock:
            if self._token is None or self._token.access_token == stale:
                await self._refresh_locked()
            assert self._token is not None
            return self._token

    def _apply(self, request: httpx.Request, token: TokenResponse) -> None:
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        if self._follow_api_domain and token.api_domain:
            target = httpx.URL(token.api_domain)
            if (target.scheme, target.host, target.port) != (request.url.scheme, request.url.host, request.url.port):
                request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
                request.headers["Host"] = request.url.netloc.decode("ascii")

    async def aclose(self) -> None:
        """Release the token endpoint's connections (PipedriveClient.aclose calls this)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _refresh_locked(self) -> None:
        if self._http is None:
            transport = RetryTransport(self._transport or httpx.AsyncHTTPTransport(), self._policy)
            self._http = httpx.AsyncClient(transport=transport, timeout=self._timeout)
        try:
            response = await self._http.post(
                self._token_url,
                data={"grant_type": "refresh_token", "refresh_token": self._refresh_token},
                auth=self._client_auth,
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"Pipedrive OAuth token endpoint unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Pipedrive OAuth refresh -> {response.status_code}", status=response.status_code)
        if response.status_code != 200:
            try:
                reasons = api_messages(response.json())
            except ValueError:
                reasons = []
            reason = "; ".join(reasons) or response.reason_phrase
            raise AuthError(
                f"Pipedrive OAuth refresh rejected ({response.status_code}): {reason}; re-install the app",
                status=response.status_code,
            )
        try:
            token = TokenResponse.model_validate_json(response.content)
        except PydanticValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
            raise ProtocolError(f"Pipedrive OAuth token response malformed: {fields}") from None
        self._token = token
        self._expires_at = self._clock() + token.expires_in
        self.refresh_count += 1
        if token.refresh_token and token.refresh_token != self._refresh_token:
            self._refresh_token = token.refresh_token
            if self._store is not None:
                await self._store.set(self._secret_name, token.refresh_token)


async def exchange_authorization_code(
    *,
    token_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TokenResponse:
    """Install step: trade the callback's `code` (valid 5 minutes) for the first token pair."""
    async with httpx.AsyncClient(transport=transport or httpx.AsyncHTTPTransport(), timeout=30) as http:
        try:
            response = await http.post(
                token_url,
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
                auth=httpx.BasicAuth(client_id, client_secret),
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"Pipedrive OAuth token endpoint unreachable: {type(exc).__name__}") from None
    if response.status_code != 200:
        try:
            reasons = api_messages(response.json())
        except ValueError:
            reasons = []
        raise AuthError(
            f"Pipedrive OAuth code exchange rejected ({response.status_code}): {'; '.join(reasons)}",
            status=response.status_code,
        )
    try:
        return TokenResponse.model_validate_json(response.content)
    except PydanticValidationError:
        raise ProtocolError("Pipedrive OAuth token response malformed") from None
