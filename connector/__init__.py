"""ml-connector: Pipedrive <-> Dynamics 365 Finance & Operations integration."""

__version__ = "0.1.0"
