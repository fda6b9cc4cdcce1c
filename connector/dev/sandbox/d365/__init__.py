"""D365 Finance & Operations simulator: OData `/data/`, Entra-like tokens, $batch, business events.

Use `D365Sandbox` in-process (async context manager) or `python -m connector.dev.sandbox.d365`.
"""

from connector.dev.sandbox.d365.server import D365Sandbox, SeedError

__all__ = ["D365Sandbox", "SeedError"]
