"""Text from outside (API messages, names, order numbers, stored rows) made safe to print with rich.

The CLI prints with rich markup, so "[/red]" in a D365 error or a Pipedrive organization name would stop a
command with a MarkupError, and "[link=…]" would style or link it; an ESC (or CSI, or a bidi override) in a
name would reach the operator's terminal as a control sequence (clear the screen, rewrite the title, hide
text). `shown` escapes the markup and makes those characters visible, so what was stored is what is shown.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 controls but tab and newline, DEL, C1 controls (0x9b is CSI), and the bidi embedding/isolate marks.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value: object) -> str:
    """`value` as text for a rich string or table cell: printed as written, never as markup or a control."""
    text = "" if value is None else str(value)
    return escape(_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
