"""A Pipedrive simulator (API v2 + the v1 endpoints we use, OAuth, rate limits, webhooks) on loopback."""

from .models import Seed
from .ratelimit import RateLimits
from .sandbox import PipedriveSandbox, default_seed

__all__ = ["PipedriveSandbox", "RateLimits", "Seed", "default_seed"]
