"""Build the function app's zip package from the repository, honouring `.funcignore`.

Why our own packer: Core Tools (`func pack`) is not assumed on the operator's machine, and a plain
`zip -r` would ship tests, the development package (`connector/dev/`), .venv and node_modules.
`.funcignore` uses .gitignore syntax, matched here by `pathspec` (pinned in infra/requirements.txt)
as git does: last matching rule wins, and a file under an excluded directory cannot be re-included.
Dependencies are NOT vendored: the deployment asks for a remote build, which installs
requirements.txt on Linux for the app's Python version.

Usage: python infra/package.py [--root DIR] [--out FILE]   (prints the packaged file count)
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

try:
    from pathspec import GitIgnoreSpec
except ImportError:  # deploy.sh runs this with the project's .venv, else the system python3
    raise SystemExit(
        "infra/package.py needs pathspec: pip install -r infra/requirements.txt (or make install)"
    ) from None

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
connector/dev/
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


def ignore_spec(funcignore: str) -> GitIgnoreSpec:
    """`.funcignore` rules, then the always-ignored ones (later rules win, so those cannot be undone)."""
    return GitIgnoreSpec.from_lines([*funcignore.splitlines(), *ALWAYS_IGNORE.splitlines()])


def collect(root: Path) -> list[str]:
    """Relative POSIX paths of every file to ship, sorted."""
    ignore_file = root / ".funcignore"
    spec = ignore_spec(ignore_file.read_text() if ignore_file.is_file() else FALLBACK_IGNORE)
    files: list[str] = []

    def walk(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            rel = entry.relative_to(root).as_posix()
            if entry.is_symlink():
                continue
            if entry.is_dir():
                # Pruned as git does: nothing below an excluded directory is looked at (or re-included).
                if not spec.match_file(rel + "/"):
                    walk(entry)
            elif not spec.match_file(rel):
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
