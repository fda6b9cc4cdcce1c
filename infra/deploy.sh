#!/usr/bin/env bash
# Deploy ml-connector to Azure: resource group, Bicep (infra/main.bicep), Key Vault secrets, code.
#
#   infra/deploy.sh [--skip-infra] [--skip-secrets] [--skip-code] [--show-keys]
#
# Configuration comes from environment variables (docs/deploy-azure.md lists them all). The Bicep
# parameters come from ONE file, infra/azd/main.parameters.json, which azd reads too: each parameter
# names the variable that feeds it, an unset variable leaves the template's default (infra/params.py).
#   this script's own: RESOURCE_GROUP (required), LOCATION (first run; AZURE_LOCATION in the file),
#             ENVIRONMENT_NAME (prod; AZURE_ENV_NAME), DEPLOYER_PRINCIPAL_ID (signed-in user;
#             AZURE_PRINCIPAL_ID), DEPLOYER_PRINCIPAL_TYPE (User), PARAMETERS_FILE (an extra ARM
#             parameters file of your own, applied first), WEBHOOK_ROUTE, EVENTS_ROUTE (printed URLs)
#   required by the template: PIPEDRIVE_COMPANY_DOMAIN, D365_ENVIRONMENT_URL, D365_DEFAULT_LEGAL_ENTITY,
#             and D365_CLIENT_ID unless D365_CREDENTIAL=managed_identity
#   optional: every other variable named in infra/azd/main.parameters.json (POLL_SCHEDULE, ALERT_EMAIL, ...)
# Secrets are read from the environment if set, else prompted for with echo off; they are written
# to Key Vault through a file descriptor (never on a command line, never printed):
#   PIPEDRIVE_API_TOKEN | PIPEDRIVE_OAUTH_CLIENT_ID + PIPEDRIVE_OAUTH_CLIENT_SECRET +
#   PIPEDRIVE_OAUTH_REFRESH_TOKEN, PIPEDRIVE_WEBHOOK_PASSWORD, PIPEDRIVE_WEBHOOK_SIGNING_SECRET
#   (optional), D365_CLIENT_SECRET (when D365_CREDENTIAL=client_secret).
#
# App settings are all set by main.bicep (connectorSettings + platformSettings); this script sets
# none itself. (tests/infra/test_bicep.py reads `# app-setting: NAME` lines here for any it would.)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

skip_infra=0 skip_secrets=0 skip_code=0 show_keys=0
for arg in "$@"; do
  case "$arg" in
    --skip-infra) skip_infra=1 ;;
    --skip-secrets) skip_secrets=1 ;;
    --skip-code) skip_code=1 ;;
    --show-keys) show_keys=1 ;;
    -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p;}' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

die() { echo "error: $*" >&2; exit 1; }
need() { [[ -n "${!1:-}" ]] || die "$1 is not set (see docs/deploy-azure.md)"; }
log() { printf '\n==> %s\n' "$*"; }

for cmd in az python3; do command -v "$cmd" >/dev/null || die "$cmd is required"; done
# The project's virtualenv after `make install` (it has pathspec for package.py), else the system python3.
python="$root/.venv/bin/python"; [[ -x "$python" ]] || python=python3
az account show --output none 2>/dev/null || die "not logged in: run 'az login' (and 'az account set -s <subscription>')"

need RESOURCE_GROUP
ENVIRONMENT_NAME="${ENVIRONMENT_NAME:-prod}"
PIPEDRIVE_AUTH_MODE="${PIPEDRIVE_AUTH_MODE:-api_token}"
D365_CREDENTIAL="${D365_CREDENTIAL:-client_secret}"
WEBHOOK_ROUTE="${WEBHOOK_ROUTE:-api/pipedrive/webhook}"
EVENTS_ROUTE="${EVENTS_ROUTE:-api/d365/events}"
deployment="ml-connector-$(date -u +%Y%m%d%H%M%S)"

# ---- 1. Infrastructure ------------------------------------------------------------------------
if [[ $skip_infra == 0 ]]; then
  # With D365_CREDENTIAL=managed_identity the app's own identity is used (its client id is an output).
  [[ "$D365_CREDENTIAL" == managed_identity ]] || need D365_CLIENT_ID
  # The parameter file reads azd's names for the environment, region and deployer.
  export AZURE_ENV_NAME="$ENVIRONMENT_NAME"
  if [[ -n "${LOCATION:-}" ]]; then export AZURE_LOCATION="$LOCATION"; else unset AZURE_LOCATION; fi
  # The signed-in user gets Key Vault Secrets Officer on the new vault so step 2 can write secrets.
  AZURE_PRINCIPAL_ID="${DEPLOYER_PRINCIPAL_ID:-$(az ad signed-in-user show --query id --output tsv 2>/dev/null || true)}"
  export AZURE_PRINCIPAL_ID AZURE_PRINCIPAL_TYPE="${DEPLOYER_PRINCIPAL_TYPE:-User}"
  [[ -z "${D365_ENVIRONMENT_URL:-}" ]] || export D365_ENVIRONMENT_URL="${D365_ENVIRONMENT_URL%/}"
  export PIPEDRIVE_AUTH_MODE D365_CREDENTIAL
  resolved="$(mktemp)"
  trap 'rm -f "$resolved"' EXIT
  "$python" "$here/params.py" >"$resolved" || die "set the variables named above (see docs/deploy-azure.md)"
  extra=()
  [[ -z "${PARAMETERS_FILE:-}" ]] || extra=(--parameters "@$PARAMETERS_FILE")

  if ! az group show --name "$RESOURCE_GROUP" --output none 2>/dev/null; then
    need LOCATION
    log "Creating resource group $RESOURCE_GROUP in $LOCATION"
    az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none
  fi

  log "Deploying infra/main.bicep as $deployment"
  az deployment group create \
    --resource-group "$RESOURCE_GROUP" \
    --name "$deployment" \
    --template-file "$here/main.bicep" \
    ${extra[@]+"${extra[@]}"} --parameters "@$resolved" \
    --output none
else
  deployment="$(az deployment group list --resource-group "$RESOURCE_GROUP" \
    --query "sort_by([?starts_with(name, 'ml-connector-') && properties.provisioningState=='Succeeded'], &properties.timestamp)[-1].name" \
    --output tsv)"
  [[ -n "$deployment" ]] || die "no successful ml-connector deployment in $RESOURCE_GROUP: run without --skip-infra"
fi

output() {
  az deployment group show --resource-group "$RESOURCE_GROUP" --name "$deployment" \
    --query "properties.outputs.$1.value" --output tsv
}
APP_NAME="$(output FUNCTION_APP_NAME)"
APP_HOST="$(output FUNCTION_APP_HOSTNAME)"
VAULT_NAME="$(output KEY_VAULT_NAME)"

# ---- 2. Secrets -------------------------------------------------------------------------------
# Value from the env var of the same purpose, else an echo-off prompt; written via a file
# descriptor so it never shows in `ps`, shell history or az output (--output none).
read_secret() { # <env var name> <prompt> -> value on stdout (empty = skip)
  local var="$1" prompt="$2" value="${!1:-}"
  if [[ -z "$value" && -t 0 ]]; then
    read -r -s -p "$prompt: " value </dev/tty; echo >&2
  fi
  printf '%s' "$value"
}

put_secret() { # <key vault secret name> <env var name> <prompt> [optional]
  local name="$1" value attempt
  value="$(read_secret "$2" "$3")"
  if [[ -z "$value" ]]; then
    [[ "${4:-}" == optional ]] && { echo "  - $name: skipped (optional)"; return 0; }
    die "no value for secret $name (set $2 or run interactively)"
  fi
  # A fresh role assignment takes a minute or two to apply: retry on 403 for up to ~3 minutes.
  for attempt in 1 2 3 4 5 6 7 8 9; do
    if az keyvault secret set --vault-name "$VAULT_NAME" --name "$name" \
         --file <(printf '%s' "$value") --encoding utf-8 --output none 2>/dev/null; then
      echo "  - $name: set"
      return 0
    fi
    sleep $((attempt * 5))
  done
  die "could not write $name to $VAULT_NAME: does your identity have Key Vault Secrets Officer on it?"
}

if [[ $skip_secrets == 0 ]]; then
  log "Writing secrets to Key Vault $VAULT_NAME"
  if [[ "$PIPEDRIVE_AUTH_MODE" == oauth ]]; then
    put_secret pipedrive-oauth-client-id PIPEDRIVE_OAUTH_CLIENT_ID "Pipedrive OAuth client id"
    put_secret pipedrive-oauth-client-secret PIPEDRIVE_OAUTH_CLIENT_SECRET "Pipedrive OAuth client secret"
    put_secret pipedrive-oauth-refresh-token PIPEDRIVE_OAUTH_REFRESH_TOKEN "Pipedrive OAuth refresh token"
  else
    put_secret pipedrive-api-token PIPEDRIVE_API_TOKEN "Pipedrive API token"
  fi
  put_secret pipedrive-webhook-password PIPEDRIVE_WEBHOOK_PASSWORD "Webhook Basic-auth password (you choose it)"
  put_secret pipedrive-webhook-signing-secret PIPEDRIVE_WEBHOOK_SIGNING_SECRET "Webhook signing secret (Enter to skip)" optional
  if [[ "$D365_CREDENTIAL" == client_secret ]]; then
    put_secret d365-client-secret D365_CLIENT_SECRET "D365 Entra app client secret"
  fi
fi

# ---- 3. Code ----------------------------------------------------------------------------------
if [[ $skip_code == 0 ]]; then
  mapping="${MAPPING_FILE:-config/mapping.yaml}"
  [[ -f "$root/$mapping" ]] || die "mapping file $mapping not found (copy config/mapping.example.yaml and fill it in)"
  if [[ -x "$root/.venv/bin/python" ]]; then  # after `make install`: validate it before it ships
    (cd "$root" && .venv/bin/python -c 'import sys; from connector.mapping.config import load_mapping as m; m(sys.argv[1])' \
      "$mapping") || die "the mapping file $mapping is invalid (see the message above)"
  fi
  package="$root/dist/ml-connector.zip"
  log "Packaging $root (honouring .funcignore)"
  "$python" "$here/package.py" --root "$root" --out "$package"
  log "Deploying the package to $APP_NAME (remote build installs requirements.txt)"
  az functionapp deployment source config-zip \
    --resource-group "$RESOURCE_GROUP" --name "$APP_NAME" \
    --src "$package" --build-remote true --output none
fi

# ---- 4. Endpoints -----------------------------------------------------------------------------
log "Endpoints"
key="$(az functionapp keys list --resource-group "$RESOURCE_GROUP" --name "$APP_NAME" \
  --query functionKeys.default --output tsv 2>/dev/null || true)"
shown="<function key: rerun with --show-keys, or az functionapp keys list -g $RESOURCE_GROUP -n $APP_NAME>"
[[ $show_keys == 1 && -n "$key" ]] && shown="$key"
cat <<EOT
  Pipedrive webhook URL (register with Basic auth user '${PIPEDRIVE_WEBHOOK_USER:-pipedrive}', see docs/admin-pipedrive.md):
    https://$APP_HOST/$WEBHOOK_ROUTE   (anonymous for the host: the connector checks Basic auth itself)
  Admin replay (function key): https://$APP_HOST/api/admin/replay?code=$shown
  D365 business events endpoint (function key; store it in the events Key Vault, see docs/admin-d365.md):
    https://$APP_HOST/$EVENTS_ROUTE?code=$shown
  Health: https://$APP_HOST/api/health
EOT
