#!/usr/bin/env sh
# azd prepackage hook: refuse to ship without a valid mapping file (as infra/deploy.sh does).
set -eu
mapping="${MAPPING_FILE:-config/mapping.yaml}"
[ -f "$mapping" ] || { echo "error: mapping file $mapping not found (copy config/mapping.example.yaml and fill it in)" >&2; exit 1; }
if [ -x .venv/bin/python ]; then
  .venv/bin/python -c 'import sys; from connector.mapping.config import load_mapping as m; m(sys.argv[1])' "$mapping" \
    || { echo "error: the mapping file $mapping is invalid (see the message above)" >&2; exit 1; }
fi
