"""Every `ml-connector` command and `make` target the docs show exists, with the options they show.

Read from code (inline spans and fenced blocks) of README.md, docs/*.md and the other READMEs; checked
against the Typer app (what `ml-connector COMMAND --help` lists) and the Makefile's targets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from connector.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "infra" / "README.md",
    ROOT / "bench" / "README.md",
]
FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?:^|(?<=[\s(/;$]))ml-connector((?:\s+[a-z][a-z-]*)+)(.*)")
MAKE = re.compile(r"(?:^|(?<=[\s(;]))make\s+([a-z][a-z-]*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def code_lines(text: str) -> list[str]:
    """Lines of fenced blocks, and inline code spans of the prose around them."""
    lines = [line for block in FENCED.findall(text) for line in block.splitlines()]
    return lines + SPAN.findall(FENCED.sub("", text))


def documented() -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(ROOT)}", line) for path in DOCS if path.exists() for line in code_lines(path.read_text())
    ]


def resolve(words: list[str]) -> Any:
    """The (sub)command the leading words name (a group's `commands` hold its subcommands), or None."""
    root = command = typer.main.get_command(app)
    for word in words:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]  # type: ignore[attr-defined]
    return None if command is root else command


def test_every_documented_command_and_option_exists() -> None:
    seen, wrong = 0, []
    for where, line in documented():
        for match in COMMAND.finditer(line):
            words, rest = match.group(1).split(), match.group(2)
            command = resolve(words)
            if command is None:
                wrong.append(f"{where}: no command `ml-connector {words[0]}` ({line.strip()})")
                continue
            seen += 1
            known = {opt for param in command.params for opt in param.opts if opt.startswith("--")}
            wrong += [f"{where}: `{command.name}` has no {opt} ({line.strip()})" for opt in OPTION.findall(rest)
                      if opt not in known | {"--help"}]  # fmt: skip
    assert seen > 10, "no documented commands found: did the docs' format change?"
    assert wrong == []


def test_every_documented_make_target_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = {(where, target) for where, line in documented() for target in MAKE.findall(line)}
    assert {"demo", "test"} <= {target for _, target in named}
    assert sorted(f"{where}: make {target}" for where, target in named if target not in targets) == []
