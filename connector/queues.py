"""Typed, versioned queue messages and the enqueue side of the work queues.

Messages carry ids only (no personal data, no secrets). On the wire they are base64 of the JSON text,
which is what the queue trigger decodes with host.json `messageEncoding: base64` (the default). Every
enqueue goes through the job row guard, so the same job key gives one message however often it is asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from connector.errors import PermanentError
from connector.inputs import MAX_ID
from connector.state.jobs import ORDER_JOB, master_job
from connector.state.tables import storage_errors
from connector.validation import problem_lines

if TYPE_CHECKING:
    from connector.settings import Settings, StorageTarget
    from connector.state import StateStore

SUPPORTED_VERSIONS = (1,)
MAX_DELAY = 7 * 24 * 3600  # Queue Storage's maximum visibility timeout
OrderReason = Literal["webhook", "poll", "replay", "demo", "reconcile"]
MasterReason = Literal["event", "timer", "cli", "replay", "demo", "reconcile"]


class MalformedMessage(PermanentError):
    """A queue message we cannot act on; it is moved to `<queue>-poison` and audited, never retried."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    correlation_id: str = Field(min_length=1, max_length=128)


class OrderBuild(_Message):
    """Build the D365 sales order for one won deal."""

    kind: Literal["order.build"] = "order.build"
    deal_id: int = Field(gt=0, le=MAX_ID)  # a Pipedrive id, as every HTTP route takes it
    reason: OrderReason

    @property
    def job_kind(self) -> str:
        return ORDER_JOB

    @property
    def job_key(self) -> str:
        return str(self.deal_id)

    @property
    def subject(self) -> str:
        return f"deal-{self.deal_id}"


class MasterPush(_Message):
    """Push one D365 master record (released product or customer) to Pipedrive."""

    kind: Literal["master.push"] = "master.push"
    entity: Literal["product", "customer"]
    key: str = Field(min_length=1, max_length=200)
    legal_entity: str = Field(min_length=1, max_length=20)
    reason: MasterReason

    @property
    def job_kind(self) -> str:
        return master_job(self.entity)

    @property
    def job_key(self) -> str:
        return f"{self.legal_entity.lower()}:{self.key}"

    @property
    def subject(self) -> str:
        return f"{self.entity}-{self.legal_entity.lower()}-{self.key}"


Message = Annotated[OrderBuild | MasterPush, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[OrderBuild | MasterPush] = TypeAdapter(Message)


def encode_message(message: OrderBuild | MasterPush) -> str:
    """The JSON text of a message (the queue client base64-encodes it on the wire)."""
    return message.model_dump_json()


def decode_message(text: str | bytes) -> OrderBuild | MasterPush:
    """Parse the trigger's (already base64-decoded) body; MalformedMessage says exactly what is wrong."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested ~1000 deep
        raise MalformedMessage(f"queue message is not JSON ({exc.__class__.__name__}: {str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"queue message is JSON {type(data).__name__}, expected an object")
    if "v" not in data:
        raise MalformedMessage("queue message is missing field 'v' (version)")
    if data["v"] not in SUPPORTED_VERSIONS or isinstance(data["v"], bool):
        raise MalformedMessage(f"queue message has unknown version {data['v']!r} (supported: {SUPPORTED_VERSIONS})")
    try:
        return _ADAPTER.validate_python(data)
    except PydanticValidationError as exc:
        problems = problem_lines(exc, root="message", skip=("order.build", "master.push"), missing="missing field")
        raise MalformedMessage("invalid queue message: " + "; ".join(problems)) from None


class PoisonMessage(BaseModel):
    """A message parked in `<queue>-poison`, as `status` shows it."""

    id: str
    inserted_on: datetime | None
    dequeue_count: int | None
    text: str
    message: OrderBuild | MasterPush | None = None
    error: str | None = None


def poison_name(queue: str) -> str:
    return f"{queue}-poison"


class Queues:
    """The order and master queues (and their poison queues), created on first use."""

    def __init__(
        self,
        service: QueueServiceClient,
        state: StateStore,
        *,
        order_queue: str = "order-build",
        master_queue: str = "master-push",
        stale_after: float | None = 3600,
        credential: Any = None,
    ) -> None:
        self._service = service
        self._state = state
        self.order_queue = order_queue
        self.master_queue = master_queue
        self._stale_after = stale_after
        self._credential = credential
        self._clients: dict[str, QueueClient] = {}

    @classmethod
    def from_target(cls, target: StorageTarget, state: StateStore, *, retry_total: int = 3, **kwargs: Any) -> Queues:
        if target.connection_string is not None:
            service = QueueServiceClient.from_connection_string(
                target.connection_string.get_secret_value(), retry_total=retry_total
            )
            return cls(service, state, **kwargs)
        credential = target.credential()
        assert target.queue_endpoint is not None
        service = QueueServiceClient(target.queue_endpoint, credential=credential, retry_total=retry_total)
        return cls(service, state, credential=credential, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, state: StateStore) -> Queues:
        return cls.from_target(
            settings.storage,
            state,
            order_queue=settings.order_queue,
            master_queue=settings.master_queue,
            stale_after=settings.job_stale_seconds,
        )

    @property
    def endpoint(self) -> str:
        return str(self._service.url)

    async def client(self, queue: str) -> QueueClient:
        """A base64-encoding client for `queue`, creating the queue the first time it is used."""
        if queue not in self._clients:
            client = self._service.get_queue_client(
                queue, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
            )
            async with storage_errors(f"creating queue {queue}", self.endpoint):
                with contextlib.suppress(ResourceExistsError):
                    await client.create_queue()
            self._clients[queue] = client
        return self._clients[queue]

    def queue_for(self, message: OrderBuild | MasterPush) -> str:
        return self.order_queue if isinstance(message, OrderBuild) else self.master_queue

    async def send(self, message: OrderBuild | MasterPush, *, delay: float = 0, queue: str | None = None) -> None:
        """Send without the job guard (re-queue paths). Messages never expire: nothing is lost silently."""
        target = queue or self.queue_for(message)
        client = await self.client(target)
        async with storage_errors(f"sending to queue {target}", self.endpoint):
            await client.send_message(
                encode_message(message), visibility_timeout=_delay(delay) or None, time_to_live=-1
            )

    async def _guarded(self, message: OrderBuild | MasterPush, *, delay: float, reopen_done: bool) -> bool:
        decision = await self._state.jobs.guard_enqueue(
            message.job_kind,
            message.job_key,
            correlation_id=message.correlation_id,
            reason=message.reason,
            reopen_done=reopen_done,
            stale_after=self._stale_after,
        )
        if not decision.enqueue:
            await self._state.audit.append(
                message.subject,
                "enqueue.skipped",
                correlation_id=message.correlation_id,
                detail={"job_state": decision.previous, "reason": message.reason, "queue": self.queue_for(message)},
            )
            return False
        try:
            await self.send(message, delay=delay)
        except BaseException:
            await self._state.jobs.undo_enqueue(decision)  # so the caller's retry is not skipped
            raise
        await self._state.audit.append(
            message.subject,
            "enqueue.queued",
            correlation_id=message.correlation_id,
            detail={"previous": decision.previous, "reason": message.reason, "delay": delay},
        )
        return True

    async def enqueue_order(self, deal_id: int, *, reason: OrderReason, correlation_id: str, delay: float = 0) -> bool:
        """Queue an order build for a deal unless one is queued, running or done; True when a message was sent."""
        message = OrderBuild(deal_id=deal_id, reason=reason, correlation_id=correlation_id)
        return await self._guarded(message, delay=delay, reopen_done=False)

    async def enqueue_master(
        self,
        entity: Literal["product", "customer"],
        key: str,
        legal_entity: str,
        *,
        reason: MasterReason,
        correlation_id: str,
        delay: float = 0,
    ) -> bool:
        """Queue a master push unless one is already queued (a done push is re-opened: data changed again)."""
        message = MasterPush(
            entity=entity, key=key, legal_entity=legal_entity, reason=reason, correlation_id=correlation_id
        )
        return await self._guarded(message, delay=delay, reopen_done=True)

    async def enqueue_masters(
        self,
        records: list[tuple[Literal["product", "customer"], str, str]],
        *,
        reason: MasterReason,
        correlation_id: str,
        concurrency: int = 16,
    ) -> int:
        """`enqueue_master` for many (entity, key, legal entity) records at once, `concurrency` sends in
        flight (the diff's sends one by one cost a round trip each); returns how many were sent."""
        gate = asyncio.Semaphore(concurrency)

        async def one(entity: Literal["product", "customer"], key: str, legal_entity: str) -> bool:
            async with gate:
                return await self.enqueue_master(
                    entity, key, legal_entity, reason=reason, correlation_id=correlation_id
                )

        sent = await asyncio.gather(*(one(*record) for record in records))
        return sum(sent)

    async def requeue(self, message: OrderBuild | MasterPush, delay: float) -> None:
        """Put a message back with a visibility delay (long Retry-After): the job row is left as it is."""
        await self.send(message, delay=delay)

    async def depth(self, queue: str) -> int:
        client = await self.client(queue)
        async with storage_errors(f"reading queue {queue}", self.endpoint):
            props = await client.get_queue_properties()
        return int(props.approximate_message_count or 0)

    async def poison_depth(self, queue: str) -> int:
        return await self.depth(poison_name(queue))

    async def peek_poison(self, queue: str, *, max_messages: int = 32) -> list[PoisonMessage]:
        client = await self.client(poison_name(queue))
        async with storage_errors(f"peeking queue {poison_name(queue)}", self.endpoint):
            peeked = await client.peek_messages(max_messages=max_messages)
        result = []
        for item in peeked:
            text = str(item.content)
            try:
                parsed: OrderBuild | MasterPush | None = decode_message(text)
                error = None
            except MalformedMessage as exc:
                parsed, error = None, str(exc)
            result.append(
                PoisonMessage(
                    id=item.id,
                    inserted_on=item.inserted_on,
                    dequeue_count=item.dequeue_count,
                    text=text,
                    message=parsed,
                    error=error,
                )
            )
        return result

    async def requeue_poison(self, queue: str) -> int:
        """Move every decodable poison message back to `queue`, re-opening failed jobs; returns how many.

        Malformed messages stay parked (a person must look at them). Each message is re-sent before it
        is deleted from the poison queue, so a crash in between duplicates (harmless) rather than loses.
        """
        poison = await self.client(poison_name(queue))
        moved = 0
        seen: set[str] = set()
        while True:
            async with storage_errors(f"reading queue {poison_name(queue)}", self.endpoint):
                batch = [m async for m in poison.receive_messages(max_messages=32, visibility_timeout=60)]
            fresh = [m for m in batch if m.id not in seen]
            if not fresh:
                return moved
            for item in fresh:
                seen.add(item.id)
                try:
                    message = decode_message(str(item.content))
                except MalformedMessage:
                    continue  # stays in poison, becomes visible again after the timeout
                await self._state.jobs.guard_enqueue(
                    message.job_kind,
                    message.job_key,
                    correlation_id=message.correlation_id,
                    reason="replay",
                    reopen_done=isinstance(message, MasterPush),
                )
                await self.send(message, queue=queue)
                async with storage_errors(f"deleting from queue {poison_name(queue)}", self.endpoint):
                    await poison.delete_message(item)
                await self._state.audit.append(
                    message.subject, "poison.requeued", correlation_id=message.correlation_id, detail={"queue": queue}
                )
                moved += 1

    async def move_aside(self, raw_text: str, error: str, *, queue: str | None = None) -> None:
        """Park a message we cannot decode in `<queue>-poison` (kept verbatim) and audit why."""
        target = queue or self.order_queue
        client = await self.client(poison_name(target))
        async with storage_errors(f"sending to queue {poison_name(target)}", self.endpoint):
            await client.send_message(raw_text, time_to_live=-1)
        await self._state.audit.append(
            f"queue-{target}",
            "message.malformed",
            correlation_id="",
            level="error",
            detail={"error": error[:500], "size": len(raw_text)},
        )

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        await self._service.close()
        if self._credential is not None and hasattr(self._credential, "close"):
            await self._credential.close()


def _delay(delay: float) -> int:
    return max(0, min(MAX_DELAY, round(delay)))
