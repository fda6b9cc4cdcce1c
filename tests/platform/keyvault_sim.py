"""A minimal Azure Key Vault secrets endpoint over loopback HTTPS, for the KeyVaultSecretStore tests.

It speaks what azure-keyvault-secrets sends: the bearer challenge (401 + WWW-Authenticate), then
GET/PUT /secrets/{name}[/{version}]?api-version=..., answering with Key Vault's JSON shapes and errors.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from connector.dev.sandbox.d365.tokens import loopback_certificate

TOKEN = "kv-test-token"


@dataclass
class KeyVaultSim:
    secrets: dict[str, str] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    reads: int = 0
    writes: int = 0
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> str:
        return str(loopback_certificate().cert_path)

    def _auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = f'Bearer authorization="https://login.microsoftonline.com/tenant", resource="{self.url}"'
            return web.json_response(
                {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer"}},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        return None

    def _bundle(self, name: str) -> dict[str, object]:
        return {
            "value": self.secrets[name],
            "id": f"{self.url}/secrets/{name}/{uuid.uuid4().hex}",
            "attributes": {"enabled": True, "created": 1, "updated": 1, "recoveryLevel": "Recoverable"},
        }

    async def get(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        name = request.match_info["name"]
        self.reads += 1
        if name in self.forbidden:
            return web.json_response({"error": {"code": "Forbidden", "message": "no get permission"}}, status=403)
        if name not in self.secrets:
            return web.json_response(
                {"error": {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} was not found"}},
                status=404,
            )
        return web.json_response(self._bundle(name))

    async def put(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        name = request.match_info["name"]
        self.writes += 1
        self.secrets[name] = (await request.json())["value"]
        return web.json_response(self._bundle(name))

    async def start(self) -> KeyVaultSim:
        app = web.Application()
        app.router.add_get("/secrets/{name}", self.get)
        app.router.add_get("/secrets/{name}/", self.get)
        app.router.add_get("/secrets/{name}/{version}", self.get)
        app.router.add_put("/secrets/{name}", self.put)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=loopback_certificate().server_context())
        await site.start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class StaticCredential:
    """Stands in for Entra ID (not our code): always hands out the token the simulator accepts."""

    async def get_token(self, *scopes: str, **kwargs: object) -> object:
        from azure.core.credentials import AccessToken

        return AccessToken(TOKEN, 4_102_444_800)

    async def close(self) -> None:
        return None
