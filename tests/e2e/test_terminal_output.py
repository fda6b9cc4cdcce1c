"""What the CLI prints for a person comes from outside (Pipedrive names, D365 texts, stored rows): rich markup in
it is shown as written, never run (a "[/red]" once stopped `status` with a MarkupError), and a terminal control
sequence (ESC, CSI, bidi override) is made visible instead of reaching the operator's terminal."""

from __future__ import annotations

import pytest

from connector.dev.sandbox.demo_data import UNMAPPED_PRODUCT_ID
from connector.pipedrive.models import ProductInput
from connector.state.tables import encode_key
from tests.e2e.test_cli import cli
from tests.fixtures.stack import E2E

MARKUP = "Pump [/red] [link=https://evil.example]click[/link] [bold"
CONTROL = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil"


async def test_markup_and_control_sequences_from_outside_are_printed_as_text(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # rich wraps table cells to the width: keep each text on one line
    pipedrive = await e2e.rt.pipedrive()
    await pipedrive.update_product(UNMAPPED_PRODUCT_ID, ProductInput(name=MARKUP))
    await e2e.win(108)  # its product has no code: the job fails with the product's name in the reason
    await e2e.drain()
    # An error text as D365 or a proxy may word it, or a row edited in Storage Explorer: raw control characters.
    table = await e2e.rt.state.jobs._table.client()
    row = await table.get_entity("order", encode_key("108"))
    await table.update_entity({**row, "LastError": f"{row['LastError']} {CONTROL}"})

    for args in (("status",), ("preview", "108"), ("audit", "108")):
        code, _, text = await cli(e2e, *args)
        assert code in (0, 1), (args, text)  # preview exits 1: the build would fail
        assert "Traceback" not in text and "MarkupError" not in text, (args, text)
        assert "[/red]" in text and "[link=https://evil.example]" in text, (args, text)
        for raw in ("\x1b", "\x9b", "\u202e", "\x07"):
            assert raw not in text, (args, repr(raw))
    code, _, text = await cli(e2e, "status")
    assert "\\u001b]0;owned" in text and "\\u202eevil" in text
