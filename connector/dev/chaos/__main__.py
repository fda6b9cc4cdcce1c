"""`python -m connector.dev.chaos [--deals N] [--workers W] [--numbering both] [--seed S] ...`

Prints the seeded kill schedule, then one line of figures per numbering mode; exits 1 on any duplicate
order, lost deal, wrong order lines, duplicate customer or leaked secret.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from connector.dev.chaos.config import ChaosConfig, Numbering
from connector.dev.chaos.run import run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connector.dev.chaos", description=__doc__)
    parser.add_argument("--preset", choices=["short", "full"], default="full")
    parser.add_argument("--numbering", choices=["from_deal", "d365_sequence", "both"], default="both")
    for name in ("deals", "workers", "kills", "fault_events", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int)
    for name in ("chaos_seconds", "drain_seconds", "poll_every"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float)
    parser.add_argument(
        "--workdir", type=Path, help="keep the workers' logs and diagnostics here (one folder per mode)"
    )
    args = parser.parse_args(argv)
    changes = {k: v for k, v in vars(args).items() if v is not None and k not in ("preset", "numbering", "workdir")}
    modes: list[Numbering] = ["from_deal", "d365_sequence"] if args.numbering == "both" else [args.numbering]
    ok = True
    for mode in modes:
        preset = ChaosConfig.short if args.preset == "short" else ChaosConfig.full
        workdir = args.workdir / mode if args.workdir else None
        report = asyncio.run(run_chaos(preset(mode, **changes), workdir=workdir))
        print(report.line(), flush=True)
        for problem in report.problems():
            print(f"  {problem}", flush=True)
        ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
