"""The deployment zip holds only what runs in Azure: built by infra/package.py from this checkout, every module in
it imports in a clean interpreter that sees the built tree and the installed requirements, and nothing else
(not this checkout, not the development package `connector/dev/` that `.funcignore` leaves out)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.infra.scripts import load

package = load("package")
ROOT = Path(__file__).resolve().parents[2]

# Run with `python -I` (no PYTHON* variables, no current directory on the path). The editable install of this
# checkout adds a finder and a path entry from site-packages; both go, so only the built tree provides `connector`.
IMPORT_ALL = r"""
import importlib, json, sys
from pathlib import Path

built, checkout = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
venv = Path(sys.prefix).resolve()  # the installed requirements (the virtualenv may sit inside the checkout)
def kept(entry):
    where = Path(entry).resolve()
    return "__editable__" not in entry and (where.is_relative_to(venv) or not where.is_relative_to(checkout))
sys.path[:] = [str(built)] + [p for p in sys.path if kept(p)]
modules = sorted(
    ".".join(path.relative_to(built).with_suffix("").parts).removesuffix(".__init__")
    for path in built.rglob("*.py")
)
for name in modules:
    importlib.import_module(name)
loaded = {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n == "connector" or n.startswith("connector.")}
print(json.dumps({"modules": modules, "loaded": loaded}))
"""


def test_every_module_of_the_built_package_imports_without_the_development_package(tmp_path: Path) -> None:
    archive = tmp_path / "ml-connector.zip"
    files = package.build(ROOT, archive)
    assert not [f for f in files if f.startswith("connector/dev/")], "the development package was shipped"
    assert (ROOT / "connector" / "dev" / "sandbox").is_dir(), "the check below needs the dev package in the checkout"
    built = tmp_path / "site"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(built)

    out = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_ALL, str(built), str(ROOT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.splitlines()[-1])
    assert "function_app" in report["modules"] and "connector.functions.worker" in report["modules"]
    assert len(report["modules"]) == sum(1 for f in files if f.endswith(".py"))
    for name, path in report["loaded"].items():
        assert not name.startswith("connector.dev"), f"{name} was imported by the deployed code"
        assert path is None or Path(path).resolve().is_relative_to(built.resolve()), f"{name} came from {path}"


def test_deployed_modules_reach_the_development_package_only_inside_a_cli_command() -> None:
    """The CLI ships but runs from a checkout; its queue-draining commands import the local runner when called."""
    for path in sorted((ROOT / "connector").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("connector/dev/"):
            continue
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            target = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [target or ""]
            if any(n == "connector.dev" or n.startswith("connector.dev.") for n in names):
                assert rel == "connector/cli.py", f"{rel}:{node.lineno} imports the development package"
                assert id(node) not in top_level, f"{rel}:{node.lineno}: import it inside the command"
