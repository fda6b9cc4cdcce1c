"""Security scan gate of infra/ (run by `make test`): checkov, 0 failed checks and 0 parsing errors.

checkov exits non-zero on a failed check but not on a file it cannot parse, and a file it cannot parse
is a file it did not check; so the gate reads the JSON report and fails on both. Every exception to a
check is an inline `// checkov:skip=ID: reason` beside the resource, listed here after the scan.
Usage: python infra/scan.py PATH_TO_CHECKOV
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parent


def main(checkov: str) -> int:
    cmd = [checkov, "-d", str(INFRA), "--skip-download", "--compact", "-o", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - our pinned tool
    try:
        report = json.loads(out.stdout)
    except ValueError:
        print(out.stdout[-2000:], out.stderr[-2000:], sep="\n")
        print("checkov did not produce a JSON report")
        return 1
    reports = report if isinstance(report, list) else [report]
    failed = parsing = checked = 0
    for part in reports:
        summary = part.get("summary", {})
        failed += summary.get("failed", 0)
        parsing += summary.get("parsing_errors", 0)
        checked += summary.get("passed", 0) + summary.get("failed", 0)
        results = part.get("results", {})
        for check in results.get("failed_checks", []):
            print(f"FAILED {check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})")
        for path in results.get("parsing_errors", []):
            print(f"PARSING ERROR {path}")
        for check in results.get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            print(f"skipped {check['check_id']} on {check['resource']}: {reason}")
    print(f"checkov: {checked} checks run, {failed} failed, {parsing} parsing errors")
    return 1 if failed or parsing or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
