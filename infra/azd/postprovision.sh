#!/usr/bin/env sh
# azd postprovision hook: write the connector's secrets to the new Key Vault and print the endpoints,
# with the very same step infra/deploy.sh runs (values from the azd environment or prompted, echo off).
set -eu
: "${AZURE_RESOURCE_GROUP:?azd sets AZURE_RESOURCE_GROUP from the provision outputs}"
RESOURCE_GROUP="$AZURE_RESOURCE_GROUP" exec bash "$(dirname "$0")/../deploy.sh" --skip-infra --skip-code
