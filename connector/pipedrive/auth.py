"""Pipedrive credentials as httpx.Auth flows: an API token, or OAuth2 with refresh.

OAuth facts (docs/api-facts.md, Pipedrive §2): the token endpoint takes a form body with
Basic client auth; access tokens live ~60 min (`expires_in`); the response names `api_domain`, the
company host requests must go to; the same refresh token comes back (no rotation), but we still
save it whenever it differs, so a future rotation cannot lock us out.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from connector.api_auth import ApiAuth, RefreshingAuth
from connector.errors import AuthError, ProtocolError, TransientError
from connector.pipedrive.errors import PIPEDRIVE_ERRORS, read_answer
from connector.retry import RetryPolicy, RetryTransport, failure_of
from connector.secret_names import SecretNames
from connector.validation import problems

REFRESH_TOKEN_SECRET = SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN


class SecretWriter(Protocol):
    """The part of connector.secrets.SecretStore that auth needs."""

    async def set(self, name: str, value: str) -> None: ...


def _fingerprint(*parts: str) -> str:
    """A stable, non-reversible key for per-credential state (the pacer); never the secret itself."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class ApiTokenAuth(ApiAuth):
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


class OAuth2RefreshAuth(RefreshingAuth[TokenResponse]):
    """Bearer token from a refresh token (renewal rules: connector.api_auth).

    With `follow_api_domain`, each request is re-targeted to the token's `api_domain` host (the
    official SDK resets its base path the same way after every token update).
    """

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
        super().__init__(margin=margin, clock=clock)
        self._token_url = token_url
        self._client_auth = httpx.BasicAuth(client_id, client_secret)
        self._refresh_token = refresh_token
        self._store = store
        self._secret_name = refresh_token_secret
        self._follow_api_domain = follow_api_domain
        self._transport = transport
        self._policy = policy or RetryPolicy(max_attempts=3)
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self.pacing_key = _fingerprint("oauth", client_id, refresh_token)

    def __repr__(self) -> str:
        return "OAuth2RefreshAuth(<redacted>)"

    @property
    def api_domain(self) -> str | None:
        return self._token.api_domain if self._token else None

    def bearer(self, token: TokenResponse) -> str:
        return token.access_token

    def _apply(self, request: httpx.Request, token: TokenResponse) -> None:
        super()._apply(request, token)
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

    async def _obtain(self, *, refused: bool) -> tuple[TokenResponse, float]:
        if self._http is None:
            # A refresh creates nothing, so even this POST may be resent after a lost answer.
            transport = RetryTransport(
                self._transport or httpx.AsyncHTTPTransport(),
                self._policy,
                classify=PIPEDRIVE_ERRORS.failure,
                resendable=lambda request: True,
            )
            self._http = httpx.AsyncClient(transport=transport, timeout=self._timeout)
        try:
            response = await self._http.post(
                self._token_url,
                data={"grant_type": "refresh_token", "refresh_token": self._refresh_token},
                auth=self._client_auth,
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"Pipedrive OAuth token endpoint unreachable: {type(exc).__name__}") from None
        failure = failure_of(response, PIPEDRIVE_ERRORS.failure)
        if failure is not None:
            if issubclass(failure.row.error, TransientError):
                raise TransientError(f"Pipedrive OAuth refresh -> {failure.status}", status=failure.status)
            reason = "; ".join(failure.reading.lines) or response.reason_phrase
            raise AuthError(
                f"Pipedrive OAuth refresh rejected ({failure.status}): {reason}; re-install the app",
                status=failure.status,
            )
        try:
            token = TokenResponse.model_validate_json(response.content)
        except PydanticValidationError as exc:
            fields = ", ".join(problem.where() for problem in problems(exc))
            raise ProtocolError(f"Pipedrive OAuth token response malformed: {fields}") from None
        if token.refresh_token and token.refresh_token != self._refresh_token:
            self._refresh_token = token.refresh_token
            if self._store is not None:
                await self._store.set(self._secret_name, token.refresh_token)
        return token, self._clock() + token.expires_in


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
        reasons = read_answer(response).lines
        raise AuthError(
            f"Pipedrive OAuth code exchange rejected ({response.status_code}): {'; '.join(reasons)}",
            status=response.status_code,
        )
    try:
        return TokenResponse.model_validate_json(response.content)
    except PydanticValidationError:
        raise ProtocolError("Pipedrive OAuth token response malformed") from None
