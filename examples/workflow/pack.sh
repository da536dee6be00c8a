#!/usr/bin/env bash
# Pack the workflow example's three applications: examples/workflow_{extract,transform,load}.tar.gz.
#
# Plain scripts run by the node's python3: nothing to build. Progress goes to stderr; the
# last three lines on stdout are the tarballs' paths (extract, transform, load).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLES="$(dirname "$HERE")"
BUILD="$HERE/build"

log() { echo "[workflow] $*" >&2; }

for app in extract transform load; do
    name="workflow_$app"
    log "staging $app"
    stage="$BUILD/stage/$name"
    rm -rf "$stage"
    mkdir -p "$stage"
    cp "$HERE/$app/"* "$stage/"
    # Write inside the build dir, then rename: a reader never sees half a tarball.
    tar -czf "$BUILD/$name.tar.gz" -C "$BUILD/stage" "$name"
    mv -f "$BUILD/$name.tar.gz" "$EXAMPLES/$name.tar.gz"
    log "wrote $EXAMPLES/$name.tar.gz"
done
for app in extract transform load; do
    echo "$EXAMPLES/workflow_$app.tar.gz"
done
