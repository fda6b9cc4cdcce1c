"""The chaos suite: real worker processes killed with SIGKILL, faults in both APIs, lost
answers, then a verdict read from D365 and Pipedrive. `make chaos`, `python -m connector.dev.chaos`,
or `await run_chaos(ChaosConfig.short("from_deal"))` from a test. Development only (not deployed)."""

from connector.dev.chaos.config import ChaosConfig
from connector.dev.chaos.run import ChaosReport, run_chaos

__all__ = ["ChaosConfig", "ChaosReport", "run_chaos"]
