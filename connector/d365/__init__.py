"""D365 Finance & Operations: Entra ID auth, OData client, $batch, errors, dimensions, business events."""
