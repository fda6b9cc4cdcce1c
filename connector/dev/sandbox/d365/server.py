"""`D365Sandbox`: the simulator in-process (async context manager) or from `python -m connector.dev.sandbox.d365`."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connector.dev.sandbox.d365.app import build_app
from connector.dev.sandbox.d365.events import EventDelivery, EventDispatcher
from connector.dev.sandbox.d365.faults import Fault, FaultBook, Limiter, LoggedRequest, RequestLog, ServiceProtection
from connector.dev.sandbox.d365.odata_errors import ODataError
from connector.dev.sandbox.d365.rules import PRODUCT_TEXT_FIELDS, Rules, WriteOptions, same_order
from connector.dev.sandbox.d365.seed import SeedData, default_seed
from connector.dev.sandbox.d365.service import ODataService, Response
from connector.dev.sandbox.d365.store import Store
from connector.dev.sandbox.d365.tokens import TokenIssuer, loopback_certificate

DEFAULT_TENANT = "8d1e6c3a-51f4-4b6e-9c0f-3a2b1c4d5e6f"
DEFAULT_CLIENT_ID = "0f9a4d2c-7b1e-4e3f-8a6d-5c4b3a2f1e0d"
DEFAULT_CLIENT_SECRET = "sandbox-only-secret"  # a test credential of the simulator, not a real secret


class SeedError(ValueError):
    """A seed record the entity rules refuse; the message carries the Infolog text."""


class D365Sandbox:
    """A D365 F&O environment on loopback over HTTPS; `base_url` is the environment URL (OData under /data/)."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        *,
        page_size: int = 10000,
        token_lifetime: int = 3600,
        port: int = 0,
        host: str = "127.0.0.1",
        tenant_id: str = DEFAULT_TENANT,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        time_factor: float = 1.0,
        write_error_status: int = 400,
        batch_write_error_status: int | None = 500,
        manual_sales_order_numbers: bool = False,
    ) -> None:
        self._initial_seed = seed if seed is not None else default_seed()
        self.page_size = page_size
        self.host = host
        self.port = port
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.batch_write_error_status = batch_write_error_status
        self.certificate = loopback_certificate()
        self.ca_cert_path = str(self.certificate.cert_path)
        self.issuer = TokenIssuer(
            tenant_id=tenant_id, client_id=client_id, client_secret=client_secret, lifetime=token_lifetime
        )
        self.store = Store()
        # Strict by default: a number sequence that takes manual numbers is an admin's choice (docs/sandbox-d365.md).
        self.options = WriteOptions(
            write_error_status=write_error_status, manual_sales_order_numbers=manual_sales_order_numbers
        )
        self.rules = Rules(self.store, self.options)
        self.faults = FaultBook()
        self.limiter = Limiter()
        self.log = RequestLog()
        trust = ssl.create_default_context()
        trust.load_verify_locations(cafile=self.ca_cert_path)
        self.events = EventDispatcher(time_factor=time_factor, verify=trust)
        self.store.listeners.append(self.events.emit_change)
        self.service = ODataService(self.store, self.rules, base_url="", page_size=page_size)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._release = asyncio.Event()
        self._late: set[asyncio.Task[Response]] = set()

    # ---- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        """Pass as azure-identity `authority=` with `disable_instance_discovery=True`."""
        return self.base_url

    def ssl_context(self) -> ssl.SSLContext:
        """Client-side context trusting the sandbox certificate (for httpx `verify=`)."""
        return ssl.create_default_context(cafile=self.ca_cert_path)

    @property
    def data_url(self) -> str:
        return f"{self.base_url}/data"

    @property
    def scope(self) -> str:
        return f"{self.base_url}/.default"

    async def start(self) -> D365Sandbox:
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(build_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.certificate.server_context())
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        self.service.base_url = self.base_url
        self.reset(self._initial_seed)
        return self

    async def stop(self) -> None:
        self._closing.set()  # ends injected stalls, so stopping never waits for them
        self._cancel_late_commits()
        await self.events.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> D365Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- control (mirrors /_sandbox/) ---------------------------------------------------------
    def reset(self, seed: dict[str, Any] | None = None) -> None:
        """Empty every table, then load `seed` (the default seed when None)."""
        self._cancel_late_commits()
        self.store.clear()
        self.faults.clear()
        self.faults.fired.clear()
        self.log.entries.clear()
        self.seed(seed if seed is not None else default_seed())

    def seed(self, data: dict[str, Any] | SeedData) -> None:
        """Add records through the same entity rules as POST; a refused record raises SeedError."""
        seed = data if isinstance(data, SeedData) else SeedData.model_validate(data)
        self.store.default_company = seed.default_company.casefold()
        if seed.manual_sales_order_numbers is not None:
            self.options.manual_sales_order_numbers = seed.manual_sales_order_numbers
        self.store.sequence_format = seed.number_sequence_format
        self.store.units.update(seed.units)
        self.options.dimension_format = list(seed.dimension_format.segments)
        self.options.dimension_delimiter = seed.dimension_format.delimiter
        self.options.dimension_values = dict(seed.dimension_format.values)
        self.dimension_format = seed.dimension_format
        endpoint, self.events.endpoint = self.events.endpoint, None  # seeding emits no events
        manual, self.options.manual_sales_order_numbers = self.options.manual_sales_order_numbers, True
        try:
            self._load("LegalEntities", seed.legal_entities)
            self._load("Currencies", seed.currencies)
            self._load("CustomerGroups", seed.customer_groups)
            self._load("CustomersV3", seed.customers)
            for product in seed.released_products:
                texts = {k: str(product[k]) for k in PRODUCT_TEXT_FIELDS if k in product}
                fields = {k: v for k, v in product.items() if k not in PRODUCT_TEXT_FIELDS}
                created = self._load("ReleasedProductsV2", [fields])[0]
                self.rules.set_product_texts(created, texts)
            for order in seed.sales_orders:
                header = {k: v for k, v in order.items() if k != "lines"}
                created = self._load("SalesOrderHeadersV2", [header])[0]
                lines = [{**line, "SalesOrderNumber": created["SalesOrderNumber"],
                          "dataAreaId": created["dataAreaId"]} for line in order.get("lines", [])]  # fmt: skip
                self._load("SalesOrderLines", lines)
        finally:
            self.events.endpoint = endpoint
            self.options.manual_sales_order_numbers = manual  # seeded orders are existing data, numbered as given

    def _load(self, entity_set: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from connector.dev.sandbox.d365.entities import coerce_body

        entity = self.store.entity(entity_set)
        out = []
        for record in records:
            try:
                values = coerce_body(entity, self.store.schema, record)
                out.append(self.rules.create(entity_set, values))
            except ODataError as exc:
                inner = (exc.inner or {}).get("message", exc.message)
                raise SeedError(f"seed {entity_set} {record!r}: {inner}") from None
        return out

    def inject_fault(self, **fault: Any) -> Fault:
        """E.g. inject_fault(status=429, retry_after=2, count=1, path="/data/CustomersV3")."""
        item = Fault.model_validate(fault)
        self.faults.add(item)
        return item

    # ---- lost answers -------------------------------------------------------------------------
    async def pause(self, seconds: float) -> None:
        """An injected stall; it ends early when the sandbox stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def later(self, delay: float, process: Callable[[], Awaitable[Response]]) -> Awaitable[Response]:
        """Run `process` after `delay` s whether or not the client still waits (a commit that lands late)."""

        async def run() -> Response:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), delay)
            return await process()

        task = asyncio.get_running_loop().create_task(run())
        self._late.add(task)
        task.add_done_callback(self._late.discard)
        return asyncio.shield(task)

    @property
    def pending_commits(self) -> int:
        """Requests held by a `commit_delay` fault that have not committed yet."""
        return len(self._late)

    async def release_late_commits(self) -> int:
        """Process every held request now (tests need not wait out the delay); returns how many."""
        release, self._release = self._release, asyncio.Event()
        pending = list(self._late)
        release.set()
        await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

    def set_number_sequences(self, *, manual_sales_order_numbers: bool) -> None:
        """Whether the sales order number sequence takes numbers from the caller (strict default: no)."""
        self.options.manual_sales_order_numbers = manual_sales_order_numbers

    def _cancel_late_commits(self) -> None:
        for task in list(self._late):
            task.cancel()

    def set_limits(self, **limits: Any) -> None:
        """Service protection, e.g. set_limits(max_requests=5, window_seconds=60); set_limits() turns it off."""
        self.limiter.config = ServiceProtection.model_validate(limits)

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 401 (as if expired), so clients must renew."""
        self.issuer.expire_all()

    def requests(self) -> list[LoggedRequest]:
        return list(self.log.entries)

    def records(self, entity_set: str) -> list[dict[str, Any]]:
        """Stored rows of an entity set as the API shapes them (all companies)."""
        entity = self.store.entity(entity_set)
        return [{k: r.get(k) for k in entity.properties} for r in self.service.rows(entity)]

    def sales_orders(self, company: str | None = None) -> list[dict[str, Any]]:
        """Sales order headers with their lines under "SalesOrderLines" (created orders included)."""
        headers = self.records("SalesOrderHeadersV2")
        lines = self.records("SalesOrderLines")
        out = []
        for header in headers:
            if company and str(header["dataAreaId"]).casefold() != company.casefold():
                continue
            own = sorted((line for line in lines if same_order(line, header)), key=lambda r: r["LineNumber"])
            out.append({**header, "SalesOrderLines": own})
        return out

    async def set_event_endpoint(
        self, url: str | None, *, legal_entity: str = "", verify: ssl.SSLContext | bool | None = None
    ) -> None:
        """Activate business events to `url` (sends the test event first); None deactivates."""
        await self.events.activate(url, legal_entity=legal_entity, verify=verify)

    async def wait_for_events(self, n: int, timeout: float = 5.0) -> list[EventDelivery]:  # noqa: ASYNC109
        """Wait until `n` event deliveries finished (delivered or given up); TimeoutError after `timeout`."""
        return await self.events.wait_for(n, timeout)


def new_correlation_id() -> str:
    return str(uuid.uuid4())
