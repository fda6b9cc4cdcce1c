"""Resolve the one parameter file (infra/azd/main.parameters.json) from the environment, as azd does.

Both deployment paths read the same file, so a parameter and the environment variable that feeds it are
written once: `azd up` substitutes it itself; `deploy.sh` runs this and hands the result to
`az deployment group create`. The rules are azd's: `${NAME}` is the variable's value, `${NAME=default}`
the value or, when NAME is unset, the default; a string that comes out empty because a variable is unset
is left out, so the template's own default applies (defaults live in main.bicep). Values are typed by the
template's `param` declarations (azd does the same), and a parameter the template lacks is an error.

Usage: python3 infra/params.py [--parameters FILE] [--template FILE] > resolved.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent
PARAMETERS = INFRA / "azd" / "main.parameters.json"
TEMPLATE = INFRA / "main.bicep"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^}]*))?\}")
DECLARATION = re.compile(r"^param\s+(\w+)\s+(\w+)(\s*=)?", re.MULTILINE)


class ParameterError(ValueError):
    """A parameter that cannot be resolved; the message names the parameter and its variable."""


@dataclass(frozen=True)
class Declared:
    type: str
    required: bool


def declarations(template: str) -> dict[str, Declared]:
    """`param name type [= default]` lines of a Bicep template."""
    return {m[1]: Declared(m[2], m[3] is None) for m in DECLARATION.finditer(template)}


def variables(value: Any) -> list[str]:
    """The environment variables a parameter value reads."""
    return [m[1] for m in REFERENCE.finditer(value)] if isinstance(value, str) else []


def substitute(value: str, env: Mapping[str, str]) -> tuple[str, bool]:
    """(text with every reference replaced, whether a referenced variable without a default was unset)."""
    unset = False

    def one(match: re.Match[str]) -> str:
        nonlocal unset
        name, default = match[1], match[2]
        if name in env:
            return env[name]
        if default is None:
            unset = True
        return default or ""

    for reference in re.findall(r"\$\{[^}]*\}?", value):
        if not REFERENCE.fullmatch(reference):
            raise ParameterError(f"{value!r}: only ${{NAME}} and ${{NAME=default}} are understood")
    return REFERENCE.sub(one, value), unset


def typed(name: str, text: str, declared: Declared, source: str) -> Any:
    if declared.type == "int":
        try:
            return int(text)
        except ValueError:
            raise ParameterError(f"{name} must be a whole number, not {text!r} (from {source})") from None
    if declared.type == "bool":
        if text.lower() not in ("true", "false"):
            raise ParameterError(f"{name} must be true or false, not {text!r} (from {source})")
        return text.lower() == "true"
    if declared.type in ("object", "array"):
        try:
            return json.loads(text)
        except ValueError:
            raise ParameterError(f"{name} must be JSON ({declared.type}), not {text!r} (from {source})") from None
    return text


def resolve(parameters: Mapping[str, Any], template: str, env: Mapping[str, str]) -> dict[str, Any]:
    """{parameter: value} for every parameter the environment (or a literal in the file) sets."""
    declared = declarations(template)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParameterError(f"parameters the template does not declare: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, entry in parameters.items():
        raw = entry.get("value")
        if not isinstance(raw, str):
            values[name] = raw  # a literal number, object, ... as written
            continue
        text, unset = substitute(raw, env)
        if text == "" and unset:
            continue  # the template's default applies
        values[name] = typed(name, text, declared[name], " ".join(variables(raw)) or "the parameter file")
    missing = [n for n, d in declared.items() if d.required and n not in values]
    if missing:
        hints = [f"{n} ({' or '.join(variables(parameters.get(n, {}).get('value'))) or 'not mapped'})" for n in missing]
        raise ParameterError(f"required parameters without a value: {', '.join(hints)}")
    return values


def document(values: Mapping[str, Any]) -> dict[str, Any]:
    """An ARM deployment parameters file, for `az deployment group create --parameters @file`."""
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {name: {"value": value} for name, value in values.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=Path, default=PARAMETERS)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    try:
        parameters = json.loads(args.parameters.read_text())["parameters"]
        values = resolve(parameters, args.template.read_text(), os.environ)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    json.dump(document(values), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
