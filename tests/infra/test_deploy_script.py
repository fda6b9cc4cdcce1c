"""infra/deploy.sh and the docs against connector.secrets: same secret names, secrets never echoed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from connector.secrets import SecretNames

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SH = (ROOT / "infra" / "deploy.sh").read_text()
SECRET_NAMES = {value for key, value in vars(SecretNames).items() if key.isupper() and isinstance(value, str)}


def test_deploy_sh_writes_exactly_the_connector_secret_names() -> None:
    written = set(re.findall(r"^\s*put_secret\s+([a-z0-9-]+)\s", DEPLOY_SH, re.MULTILINE))
    assert SECRET_NAMES, "connector.secrets.SecretNames has no names"
    assert written == SECRET_NAMES


def test_docs_list_every_secret_name() -> None:
    text = (ROOT / "docs" / "deploy-azure.md").read_text()
    missing = sorted(name for name in SECRET_NAMES if f"`{name}`" not in text)
    assert not missing, f"docs/deploy-azure.md does not document {missing}"


def test_secret_values_never_reach_a_command_line_or_output() -> None:
    joined = DEPLOY_SH.replace("\\\n", " ")  # shell line continuations -> one line per command
    sets = re.findall(r"az keyvault secret set[^\n]*", joined)
    assert sets, "deploy.sh no longer writes secrets with az keyvault secret set"
    for command in sets:
        assert "--value" not in command, "a secret on the command line shows in `ps` and shell history"
        assert "--output none" in command, "az prints the secret value unless output is off"
        assert "--file <(printf" in command
    assert re.search(r"read -r -s ", DEPLOY_SH), "prompts must not echo"
    assert "set -x" not in DEPLOY_SH


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")
def test_deploy_sh_is_valid_bash_and_has_help() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "infra" / "deploy.sh")], check=True)
    result = subprocess.run(
        ["bash", str(ROOT / "infra" / "deploy.sh"), "--help"], capture_output=True, text=True, check=True
    )
    assert "RESOURCE_GROUP" in result.stdout
    bad = subprocess.run(["bash", str(ROOT / "infra" / "deploy.sh"), "--nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option" in bad.stderr
