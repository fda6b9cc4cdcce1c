"""Writing one planned order to D365, exactly once, in either numbering mode (docs/architecture.md,
"Numbering modes" and "Lost answers").

- `from_deal`: the number is ours, so header and every line go in ONE changeset and D365's "record
  already exists" is a second guard. No lookup before a first attempt's create: one call per order.
- `d365_sequence`: the header is created alone (D365 assigns the number), then all missing lines in one
  changeset carrying it. Each line carries its stable identity (`CustomersLineNumber`), so a retry after a
  crash between header and lines, or mid-lines, finds the header by the deal reference and adds only
  the lines that are missing. Never a `$n` Content-ID reference (docs/api-facts.md, D365 §4).

Every create is announced on the job first (`JobHandle.intend`). An answer that never came leaves the
intent open; the next attempt waits for the settle time, looks, and adopts what it finds or creates then.
An answer that says nothing was written (refused, throttled, never sent) clears it. An order is reported
done only when every planned line is on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from connector.d365.client import D365Client
from connector.d365.models import SalesOrderHeader, SalesOrderLine, SalesOrderLineCreate
from connector.errors import DuplicateError, PermanentError, UnknownOutcomeError
from connector.flows.context import FlowContext
from connector.flows.runner import JobHandle
from connector.mapping.orders import OrderPlan

Outcome = Literal["created", "adopted"]


@dataclass(frozen=True)
class Frozen:
    """What a deal's order is looked up by, fixed at its first attempt (kept on the job's context)."""

    reference: str
    reference_field: str
    legal_entity: str
    numbering: str
    order_number: str | None  # from_deal: the number made from the deal; d365_sequence: None


@dataclass
class Written:
    order_number: str
    outcome: Outcome
    lines_added: int
    # D365's LineAmount of each planned line (by CustomersLineNumber), as D365 answered or showed them.
    line_amounts: dict[int, Decimal] = field(default_factory=dict)


async def write_order(
    ctx: FlowContext, handle: JobHandle, d365: D365Client, plan: OrderPlan, frozen: Frozen
) -> Written:
    writer = _Writer(ctx, handle, d365, plan, frozen)
    written = await (writer.from_deal() if frozen.numbering == "from_deal" else writer.d365_sequence())
    written.line_amounts = writer.amounts
    return written


class _Writer:
    def __init__(self, ctx: FlowContext, handle: JobHandle, d365: D365Client, plan: OrderPlan, frozen: Frozen) -> None:
        self.ctx, self.handle, self.d365, self.plan, self.frozen = ctx, handle, d365, plan, frozen
        self.amounts: dict[int, Decimal] = {}

    def _saw(self, lines: list[SalesOrderLine]) -> None:
        self.amounts.update({line.customers_line_number: line.line_amount for line in lines})

    # --- from_deal ---------------------------------------------------------------------------------

    async def from_deal(self) -> Written:
        number = self.frozen.order_number
        assert number is not None
        intent = self.handle.open_intent()
        if intent is not None:
            await self.handle.wait_to_settle(intent, f"order {number}")
            found = await self.d365.get_order(number, self.frozen.legal_entity)
            if found is not None:
                if not self._ours(found):
                    raise self._not_ours(number, "it was looked up after a lost answer")
                await self._adopt(found, via="re-check after a lost answer")
                return await self._complete(found, "adopted")
            await self.ctx.audit("order.recheck_absent", order_number=number)
        await self.handle.intend("order.create", order_number=number)
        await self.ctx.step("before_create")
        try:
            _, lines = await self.d365.create_sales_order(self.plan.header, self.plan.lines)
        except DuplicateError as exc:
            await self.handle.settled()
            found = await self.d365.get_order(number, self.frozen.legal_entity)
            if found is None or not self._ours(found):
                # Not ours to adopt (the number is taken by another order): retrying cannot help.
                raise self._not_ours(number, str(exc)) from exc
            await self._adopt(found, via="duplicate")
            return await self._complete(found, "adopted")
        except UnknownOutcomeError as exc:
            await self._answer_lost("order.create", exc)
            raise
        except BaseException:
            await self.handle.settled()  # refused, throttled or never sent: nothing was written
            raise
        self._saw(lines)
        await self.handle.settled(order_number=number)
        await self.ctx.audit("order.created", order_number=number, lines=len(lines))
        await self.ctx.step("after_create")
        return Written(number, "created", len(lines))

    # --- d365_sequence -----------------------------------------------------------------------------

    async def d365_sequence(self) -> Written:
        number: str | None = self.handle.context.get("order_number")
        outcome: Outcome = "created"
        present: set[int] | None = None  # line identities known to be on the order; None = must look
        if number is None:
            intent = self.handle.open_intent("order.header")
            if intent is not None:
                await self.handle.wait_to_settle(intent, f"order {self.frozen.reference}")
                found = await self._find_by_reference()
                if found is not None:
                    number, outcome = found.sales_order_number, "adopted"
                    present = _identities(found)
                    self._saw(found.lines)
                    await self._adopt(found, via="re-check after a lost answer")
                    await self.handle.settled(order_number=number, header_outcome="adopted")
                else:
                    await self.ctx.audit("order.recheck_absent", reference=self.frozen.reference)
            if number is None:
                number = await self._create_header()
                present = set()
        else:
            outcome = self.handle.context.get("header_outcome", "created")
        return await self._add_missing_lines(number, outcome, present)

    async def _create_header(self) -> str:
        await self.handle.intend("order.header", reference=self.frozen.reference)
        await self.ctx.step("before_create")
        try:
            header = await self.d365.create_order_header(self.plan.header)
        except DuplicateError as exc:
            await self.handle.settled()
            raise PermanentError(
                f"D365 refused the header of {self.frozen.reference!r} as a duplicate ({exc}); the sales order "
                "number sequence hands out a number that is taken: check it in D365, then replay"
            ) from exc
        except UnknownOutcomeError as exc:
            await self._answer_lost("order.header", exc)
            raise
        except BaseException:
            await self.handle.settled()
            raise
        number = header.sales_order_number
        await self.handle.settled(order_number=number, header_outcome="created")
        await self.ctx.audit("order.header_created", order_number=number, reference=self.frozen.reference)
        await self.ctx.step("after_header")
        return number

    async def _add_missing_lines(self, number: str, outcome: Outcome, present: set[int] | None) -> Written:
        intent = self.handle.open_intent("order.lines")
        if intent is not None:
            await self.handle.wait_to_settle(intent, f"lines of order {number}")
            present = None
        if present is None:
            found = await self.d365.get_order(number, self.frozen.legal_entity)
            if found is None or not self._ours(found):
                raise PermanentError(
                    f"order {number} of {self.frozen.reference!r} is no longer in {self.frozen.legal_entity} "
                    "(deleted or changed in D365); the deal's lines were not all written. Check D365, then replay"
                )
            present = _identities(found)
            self._saw(found.lines)
        missing = [line for line in self.plan.lines if line.customers_line_number not in present]
        if intent is not None:
            await self.handle.settled()
            await self.ctx.audit(
                "order.lines_rechecked", order_number=number, via="re-check after a lost answer",
                present=sorted(present), missing=[line.customers_line_number for line in missing],
            )  # fmt: skip
        added = await self._write_lines(number, missing) if missing else 0
        return Written(number, outcome, added)

    async def _write_lines(self, number: str, lines: list[SalesOrderLineCreate]) -> int:
        ids = [line.customers_line_number for line in lines]
        await self.handle.intend("order.lines", order_number=number, lines=ids)
        await self.ctx.step("before_lines")
        try:
            created = await self.d365.add_order_lines(self.frozen.legal_entity, number, lines)
        except UnknownOutcomeError as exc:
            await self._answer_lost("order.lines", exc)
            raise
        except BaseException:
            await self.handle.settled()
            raise
        self._saw(created)
        await self.handle.settled()
        await self.ctx.audit("order.lines_added", order_number=number, lines=ids)
        await self.ctx.step("after_create")
        return len(created)

    # --- shared ------------------------------------------------------------------------------------

    async def _complete(self, found: SalesOrderHeader, outcome: Outcome) -> Written:
        """An adopted from_deal order: add any planned line it lacks (it is never reported done incomplete)."""
        present = _identities(found)
        self._saw(found.lines)
        missing = [line for line in self.plan.lines if line.customers_line_number not in present]
        added = await self._write_lines(found.sales_order_number, missing) if missing else 0
        return Written(found.sales_order_number, outcome, added)

    async def _find_by_reference(self) -> SalesOrderHeader | None:
        return await self.d365.find_order_by_reference(
            self.frozen.reference, self.frozen.legal_entity, field=self.frozen.reference_field
        )

    def _not_ours(self, number: str, why: str) -> PermanentError:
        return PermanentError(
            f"D365 refused order {number!r} as a duplicate, but it does not carry this deal's reference "
            f"{self.frozen.reference!r} ({why}); free the order number or change order.number_template, then replay"
        )

    def _ours(self, found: SalesOrderHeader) -> bool:
        value = (
            found.customers_order_reference
            if self.frozen.reference_field == "CustomersOrderReference"
            else found.customer_requisition_number
        )
        return value.casefold() == self.frozen.reference.casefold()

    async def _adopt(self, found: SalesOrderHeader, *, via: str) -> None:
        await self.ctx.audit(
            "order.adopted", order_number=found.sales_order_number, reference=self.frozen.reference, via=via,
            lines=len(found.lines),
        )  # fmt: skip

    async def _answer_lost(self, op: str, exc: UnknownOutcomeError) -> None:
        """The intent stays open: the next attempt waits for the settle time and looks before creating."""
        await self.ctx.audit(
            "order.answer_lost", level="warning", op=op, error=str(exc), settle=round(self.handle.lifecycle.settle)
        )


def _identities(order: SalesOrderHeader) -> set[int]:
    return {line.customers_line_number for line in order.lines}
