#!/usr/bin/env bash
# Fuzz the manager's HTTP API from its /openapi.json with schemathesis (see fuzz_api.py):
# no answer may be a 5xx and every answer must match the document's schemas.
# Usage: ./scripts/fuzz_api.sh
#   FUZZ_MAX_EXAMPLES, FUZZ_MAX_TIME, FUZZ_SEED, FUZZ_WORKERS: see fuzz_api.py;
#   FUZZ_TIMEOUT: hard bound of the whole run in seconds (default 240)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e '.[test,fuzz]'
export PATH="$PWD/.venv/bin:$PATH"
FUZZ_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/litepipeline-fuzz.XXXXXX")
export FUZZ_ROOT
cleanup() {
    # the driver stops its daemons itself; these are the ones a killed driver left behind
    if [ -f "$FUZZ_ROOT/pids" ]; then
        while read -r pid; do
            kill -KILL "$pid" 2>/dev/null || true
        done < "$FUZZ_ROOT/pids"
    fi
    rm -rf "$FUZZ_ROOT"
}
trap cleanup EXIT
# SIGTERM at the bound (the driver then stops the daemons), SIGKILL 30 s later
timeout --kill-after=30 "${FUZZ_TIMEOUT:-240}" .venv/bin/python scripts/fuzz_api.py
