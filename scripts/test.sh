#!/usr/bin/env bash
# Install LitePipeline with its test dependencies into ./.venv and run the whole test suite.
# Usage: ./scripts/test.sh [pytest args...]
# The suite runs on ${TEST_WORKERS:-4} pytest-xdist workers (TEST_WORKERS=0: in this process).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,postgres]'
# The original 0.1.5 client, to test that it keeps working (tests/e2e/test_legacy_client.py).
# Its package is named litepipeline too, so it gets a venv of its own; when it cannot be
# made (no registry, say) those tests skip and say why.
if [ ! -x .venv-legacy/bin/litepipeline ]; then
    rm -rf .venv-legacy
    if ! { "$PYTHON" -m venv .venv-legacy &&
           .venv-legacy/bin/python -m pip install --quiet -r tests/legacy-requirements.txt; }; then
        echo "warning: could not install the 0.1.5 client into .venv-legacy; its tests will skip" >&2
        rm -rf .venv-legacy
    fi
fi
# the daemons and the CLI the end-to-end tests start come from this venv
export PATH="$PWD/.venv/bin:$PATH"
# The tests start hundreds of daemons and CLIs that import the package from this tree:
# compiled once here, since where PYTHONDONTWRITEBYTECODE is set no process keeps its
# bytecode and each compiles every module again (~0.25 s of CPU per manager start)
.venv/bin/python -m compileall -q litepipeline
exec .venv/bin/python -m pytest -rs -n "${TEST_WORKERS:-4}" "$@"   # (pyproject: testpaths = tests)
