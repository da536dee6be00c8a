#!/usr/bin/env bash
# The main job: install LitePipeline into ./.venv, start a manager and a node on the
# embedded SQLite store (free loopback ports, a fresh directory under /tmp), pack and
# upload examples/multiple_actions, run a task to completion and show third's joined
# output; both daemons are stopped by PID on the way out, even when a step fails.
# Usage: ./scripts/demo.sh          (exit status 0 only when the task ends in success)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}

step() { printf '\n==> %s\n' "$*"; }

step "installing LitePipeline into $REPO/.venv"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
export PATH="$REPO/.venv/bin:$PATH"

WORK=$(mktemp -d /tmp/litepipeline-demo.XXXXXX)
PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ $status -ne 0 ]; then
        echo "demo failed (exit $status); logs are in $WORK" >&2
    else
        echo "daemons stopped; logs are in $WORK"
    fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(free_port); TCP=$(free_port); NODE_HTTP=$(free_port)

step "writing configurations with liteconfig in $WORK"
mkdir -p "$WORK/manager" "$WORK/node"
liteconfig -s manager -o "$WORK/manager" >/dev/null
liteconfig -s node -o "$WORK/node" >/dev/null
sed -i -e "s/^http_host: .*/http_host: 127.0.0.1/" -e "s/^tcp_host: .*/tcp_host: 127.0.0.1/" \
    -e "s/^http_port: .*/http_port: $HTTP/" -e "s/^tcp_port: .*/tcp_port: $TCP/" "$WORK/manager/configuration.yml"
sed -i -e "s/^http_host: .*/http_host: 127.0.0.1/" -e "s/^http_port: .*/http_port: $NODE_HTTP/" \
    -e "s/^manager_http_port: .*/manager_http_port: $HTTP/" -e "s/^manager_tcp_port: .*/manager_tcp_port: $TCP/" \
    "$WORK/node/configuration.yml"

step "starting litemanager (http 127.0.0.1:$HTTP) and litenode (http 127.0.0.1:$NODE_HTTP)"
litemanager -c "$WORK/manager/configuration.yml" >"$WORK/manager/console.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP/" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$HTTP/"; echo
litenode -c "$WORK/node/configuration.yml" >"$WORK/node/console.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    litepipeline -r "127.0.0.1:$HTTP" cluster info | grep -q '"number_of_nodes": 1' && break; sleep 0.1
done
litepipeline "127.0.0.1:$HTTP" cluster info

step "packing examples/multiple_actions (builds its own venv the first time)"
TARBALL=$(./examples/multiple_actions/pack.sh | tail -n 1)

step "running the example"
APP_ID=$(litepipeline -r "127.0.0.1:$HTTP" app create -f "$TARBALL" -n "multiple actions demo" -d demo \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_id"])')
litepipeline "127.0.0.1:$HTTP" app list
TASK_ID=$(litepipeline -r "127.0.0.1:$HTTP" task create -a "$APP_ID" -n "task demo" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["task_id"])')
for _ in $(seq 600); do
    STAGE=$(litepipeline -r "127.0.0.1:$HTTP" task info -t "$TASK_ID" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["task_info"]["stage"])')
    [ "$STAGE" = finished ] && break
    sleep 0.1
done
litepipeline "127.0.0.1:$HTTP" task info -t "$TASK_ID"
litepipeline -r "127.0.0.1:$HTTP" task info -t "$TASK_ID" | python3 -c '
import json, sys
info = json.load(sys.stdin)["task_info"]
print("third joined:", json.dumps(info["result"]["third"]["result"]["data"]))
sys.exit(0 if info["status"] == "success" else 1)'
