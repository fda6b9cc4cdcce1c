"""infra/package.py: what goes into the deployment zip (.funcignore honoured, secrets never shipped)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.infra.scripts import load

package = load("package")
ROOT = Path(__file__).resolve().parents[2]


def _tree(root: Path, files: list[str]) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rel}\n")


FILES = [
    "function_app.py",
    "host.json",
    "requirements.txt",
    "connector/__init__.py",
    "connector/settings.py",
    "connector/__pycache__/settings.cpython-311.pyc",
    "connector/dev/__init__.py",
    "connector/dev/sandbox/pipedrive/app.py",
    "config/mapping.yaml",
    "config/demo-mapping.yaml",
    "tests/test_x.py",
    ".venv/lib/site.py",
    "node_modules/azurite/index.js",
    "local.settings.json",
    ".ml-connector/secrets.enc",
    "docs/readme.md",
    "notes.md",
    ".hypothesis/examples/abc",
    "dist/ml-connector.zip",
]


def test_funcignore_rules_are_applied(tmp_path: Path) -> None:
    _tree(tmp_path, FILES)
    (tmp_path / ".funcignore").write_text(
        "# comment\n\n.venv/\nnode_modules/\n__pycache__/\ntests\n/connector/dev/\n*.md\n!docs/readme.md\n"
        "config/demo-*.yaml\n"
    )
    shipped = set(package.collect(tmp_path))
    assert {
        "function_app.py",
        "host.json",
        "requirements.txt",
        "connector/__init__.py",
        "connector/settings.py",
        "config/mapping.yaml",
        "docs/readme.md",  # re-included by the negation, last rule wins
        ".funcignore",
    } == shipped


def test_local_secrets_are_never_shipped_even_if_funcignore_forgets(tmp_path: Path) -> None:
    _tree(tmp_path, FILES)
    (tmp_path / ".funcignore").write_text("tests/\n")
    shipped = set(package.collect(tmp_path))
    assert "local.settings.json" not in shipped
    assert not any(p.startswith(".ml-connector/") or p.endswith(".enc") for p in shipped)
    assert not any(p.startswith((".hypothesis/", "dist/")) for p in shipped), "caches and old packages"
    assert "tests/test_x.py" not in shipped


def test_fallback_without_funcignore_excludes_dev_only_code(tmp_path: Path) -> None:
    _tree(tmp_path, FILES)
    shipped = set(package.collect(tmp_path))
    assert "connector/settings.py" in shipped and "config/mapping.yaml" in shipped
    for prefix in ("tests/", ".venv/", "node_modules/", "connector/dev/", "docs/"):
        assert not any(p.startswith(prefix) for p in shipped), prefix
    assert not any("__pycache__" in p for p in shipped)


def test_build_writes_zip_and_refuses_a_package_without_entry_point(tmp_path: Path) -> None:
    _tree(tmp_path / "app", FILES)
    out = tmp_path / "dist" / "app.zip"
    files = package.build(tmp_path / "app", out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted(files)
        assert archive.read("host.json") == b"# host.json\n"
    (tmp_path / "app" / "function_app.py").unlink()
    with pytest.raises(SystemExit, match=r"function_app\.py"):
        package.build(tmp_path / "app", out)


def test_repository_package_leaves_out_tests_and_tooling() -> None:
    shipped = set(package.collect(ROOT))
    assert "connector/settings.py" in shipped
    for prefix in ("tests/", ".venv/", "node_modules/", ".git/", "infra/", ".hypothesis/", "dist/"):
        assert not any(p.startswith(prefix) for p in shipped), prefix


def test_funcignore_is_read_as_git_reads_gitignore(tmp_path: Path) -> None:
    _tree(tmp_path, [*FILES, "docs/guide/setup.md", "config/local-dev.yaml", "config/prod.yaml", "a/b/c/secret.json"])
    (tmp_path / ".funcignore").write_text(
        "docs/\n!docs/readme.md\n"  # a file below an excluded directory cannot be re-included
        "config/[l]ocal-*.yaml\n"  # character classes
        "**/secret.json\n"  # at any depth
        "\\#notes.md\n"  # escaped '#': a pattern, not a comment
    )
    shipped = set(package.collect(tmp_path))
    assert not any(p.startswith("docs/") for p in shipped)
    assert "config/local-dev.yaml" not in shipped and "config/prod.yaml" in shipped
    assert "a/b/c/secret.json" not in shipped
