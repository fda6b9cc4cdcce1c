"""Who is calling: API tokens (`x-api-token`) and OAuth 2 bearer tokens, plus the `/oauth/token` endpoint.

OAuth facts (pipedrive-api.md section 2): form body only, Basic client auth, access tokens live
60 minutes, the refresh token is NOT rotated (the same one comes back), `api_domain` names the host
to call. Here `api_domain` is the sandbox base URL, so a client following it lands back on us.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from . import scopes
from .envelope import ApiError, forbidden, unauthorized
from .store import Store

AUTH_CODE_TTL = 300.0  # "the authorization_code expires in 5 minutes"


@dataclass
class Principal:
    kind: str  # "api_token" | "oauth"
    key: str  # the token itself: burst limits are per token; never logged
    user_id: int
    scope: frozenset[str] = frozenset()


@dataclass
class _Grant:
    client_id: str
    scope: str
    user_id: int
    expires_at: float


def _oauth_error(message: str, status: int = 400) -> ApiError:
    # JSON shape of OAuth errors is UNCONFIRMED; messages are the documented ones.
    return ApiError(status, {"success": False, "error": message, "error_info": "Please check developers.pipedrive.com"})


class TokenStore:
    def __init__(self, store: Store, *, access_ttl: float = 3599.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.access_ttl = access_ttl
        self.clock = clock
        self.codes: dict[str, _Grant] = {}
        self.access: dict[str, _Grant] = {}
        self.refresh: dict[str, _Grant] = {}

    def clear(self) -> None:
        self.codes.clear()
        self.access.clear()
        self.refresh.clear()

    def issue_code(self, client_id: str, scope: str | None = None) -> str:
        client = self.store.oauth_clients.get(client_id)
        if client is None:
            raise _oauth_error("Invalid client: client is invalid")
        code = secrets.token_hex(20)
        self.codes[code] = _Grant(
            client_id, scope or client["scope"], self.store.default_user["id"], self.clock() + AUTH_CODE_TTL
        )
        return code

    def expire_access_tokens(self) -> int:
        """Control API: make every live access token expired now (clients must refresh)."""
        for grant in self.access.values():
            grant.expires_at = self.clock() - 1
        return len(self.access)

    def authenticate(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
            grant = self.access.get(token)
            if grant is None:
                raise unauthorized("Invalid token: access_token is invalid")
            if grant.expires_at <= self.clock():
                raise unauthorized("Invalid token: access_token is invalid")
            return Principal("oauth", token, grant.user_id, frozenset(grant.scope.split(",")))
        if header:
            raise ApiError(400, {"success": False, "error": "Invalid request: malformed authorization header"})
        token = request.headers.get("x-api-token", "")
        # ?api_token= is no longer documented (SDK 27.0.0 moved to the header); server acceptance is
        # UNCONFIRMED, so we accept it on v1 paths only, where older clients used it.
        if not token and request.path.startswith(("/v1/", "/api/v1/")):
            token = request.query.get("api_token", "")
        user_id = self.store.api_tokens.get(token) if token else None
        if user_id is None:
            raise unauthorized()
        return Principal("api_token", token, user_id)

    @staticmethod
    def require_scope(principal: Principal, method: str, route: str) -> None:
        """OAuth scopes gate operations (scopes.SCOPES, from the specs) -> 403 "Scope and URL mismatch";
        API tokens have full access. A route with no entry is refused, naming the gap."""
        if principal.kind != "oauth":
            return
        if scopes.missing_entry(method, route):
            raise forbidden(f"Scope and URL mismatch (the sandbox has no scope entry for {method} {route})")
        if not scopes.allowed(method, route, principal.scope):
            raise forbidden("Scope and URL mismatch")

    # ---- GET /oauth/authorize ------------------------------------------------------------------------
    async def authorize_endpoint(self, request: web.Request) -> web.Response:
        """The consent screen, auto-approved: redirect to `redirect_uri?code=...&state=...`."""
        client = self.store.oauth_clients.get(request.query.get("client_id", ""))
        if client is None:
            raise _oauth_error("Invalid client: client is invalid")
        redirect = request.query.get("redirect_uri", client["redirect_uri"])
        if redirect != client["redirect_uri"]:
            raise _oauth_error("Invalid request: redirect_uri is invalid")
        params = {"code": self.issue_code(client["client_id"])}
        if "state" in request.query:
            params["state"] = request.query["state"]
        raise web.HTTPFound(f"{redirect}?{urlencode(params)}")

    # ---- POST /oauth/token -----------------------------------------------------------------------
    async def token_endpoint(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            raise _oauth_error("content must be application/x-www-form-urlencoded")
        form = await request.post()
        client = self._client(request, form)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self.codes.pop(str(form.get("code", "")), None)
            if grant is None or grant.client_id != client["client_id"]:
                raise _oauth_error("Invalid grant: authorization_code is invalid")
            if grant.expires_at <= self.clock():
                raise _oauth_error("Invalid grant: authorization_code has expired")
            if form.get("redirect_uri") and form.get("redirect_uri") != client["redirect_uri"]:
                raise _oauth_error("Invalid request: redirect_uri is invalid")
            refresh = f"{grant.user_id}:{self.store.default_user['company_id']}:{secrets.token_hex(20)}"
        elif grant_type == "refresh_token":
            refresh = str(form.get("refresh_token", ""))
            found = self.refresh.get(refresh)
            if found is None or found.client_id != client["client_id"] or found.expires_at <= self.clock():
                raise _oauth_error("Invalid grant: refresh_token is invalid")
            grant = found
        else:
            raise _oauth_error("Invalid request: unsupported grant_type")
        # Refresh tokens live 60 days from last use; the same one is returned (no rotation).
        self.refresh[refresh] = _Grant(grant.client_id, grant.scope, grant.user_id, self.clock() + 60 * 86400)
        access = "v1u:" + secrets.token_urlsafe(48)
        self.access[access] = _Grant(grant.client_id, grant.scope, grant.user_id, self.clock() + self.access_ttl)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.access_ttl),
            "refresh_token": refresh,
            "scope": grant.scope,
            "api_domain": f"{request.scheme}://{request.host}",
        }
        return web.json_response(body)

    def _client(self, request: web.Request, form: Any) -> dict[str, str]:
        header = request.headers.get("Authorization", "")
        client_id = secret = ""
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise _oauth_error("Invalid request: malformed authorization header") from exc
        else:  # body credentials are accepted, "not recommended"
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        client = self.store.oauth_clients.get(client_id)
        if client is None or not secrets.compare_digest(client["client_secret"], secret):
            raise _oauth_error("Invalid client: client is invalid")
        return client
