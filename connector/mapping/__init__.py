"""Pure mapping between Pipedrive and D365 records: data in, data out, no I/O (docs/architecture.md, "Layers")."""
