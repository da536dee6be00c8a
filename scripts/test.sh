#!/usr/bin/env bash
# Install LitePipeline with its test dependencies into ./.venv and run the whole test suite.
# Usage: ./scripts/test.sh [pytest args...]
# The suite runs on ${TEST_WORKERS:-2} pytest-xdist workers (TEST_WORKERS=0: in this process).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,postgres]'
# the daemons and the CLI the end-to-end tests start come from this venv
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest -rs -n "${TEST_WORKERS:-2}" "$@"   # (pyproject: testpaths = tests)
