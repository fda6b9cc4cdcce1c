"""Build the function app's zip package from the repository, honouring `.funcignore`.

Why our own packer: Core Tools (`func pack`) is not assumed on the operator's machine, and a plain
`zip -r` would ship tests, the simulators, .venv and node_modules. `.funcignore` uses .gitignore
syntax; this supports the subset a Functions project needs: comments, blank lines, `!` negation,
a trailing `/` for directories, a leading `/` to anchor at the root, and `*`, `?`, `**` globs.
Dependencies are NOT vendored: the deployment asks for a remote build, which installs
requirements.txt on Linux for the app's Python version.

Usage: python infra/package.py [--root DIR] [--out FILE]   (prints the packaged file count)
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Used only when the project has no .funcignore (it should; the platform area owns it).
FALLBACK_IGNORE = """
.git/
.venv/
node_modules/
__pycache__/
*.pyc
.mypy_cache/
.ruff_cache/
.pytest_cache/
tests/
bench/
docs/
infra/
connector/sandbox/
local.settings.json
.ml-connector/
"""
# Never shipped, whatever .funcignore says: local secrets, VCS data, test caches, our own output.
ALWAYS_IGNORE = """
.git/
local.settings.json
.ml-connector/
*.enc
.env
.hypothesis/
.coverage
htmlcov/
/dist/
"""


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _glob_to_regex(pattern: str, anchored: bool) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{''.join(out)}$")


def parse_rules(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = line.startswith("/") or "/" in line
        rules.append(Rule(_glob_to_regex(line.lstrip("/"), anchored), negate, dir_only))
    return rules


def is_ignored(rel_path: str, is_dir: bool, rules: list[Rule]) -> bool:
    """Last matching rule wins, as in .gitignore."""
    ignored = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.regex.match(rel_path):
            ignored = not rule.negate
    return ignored


def collect(root: Path) -> list[str]:
    """Relative POSIX paths of every file to ship, sorted."""
    ignore_file = root / ".funcignore"
    text = ignore_file.read_text() if ignore_file.is_file() else FALLBACK_IGNORE
    rules = parse_rules(text) + parse_rules(ALWAYS_IGNORE)
    files: list[str] = []

    def walk(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            rel = entry.relative_to(root).as_posix()
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if not is_ignored(rel, True, rules):
                    walk(entry)
            elif not is_ignored(rel, False, rules):
                files.append(rel)

    walk(root)
    return files


def build(root: Path, out: Path) -> list[str]:
    files = collect(root)
    for required in ("function_app.py", "host.json", "requirements.txt"):
        if required not in files:
            raise SystemExit(f"package would lack {required}: check .funcignore and the project root")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel in files:
            archive.write(root / rel, rel)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--out", type=Path, default=Path("dist/ml-connector.zip"))
    args = parser.parse_args(argv)
    files = build(args.root.resolve(), args.out)
    print(f"{args.out}: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
