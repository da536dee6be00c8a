#!/usr/bin/env bash
# Pack examples/service.tar.gz: one long-running action run by the node's python3.
#
# Nothing to build (no env, no third-party packages). Progress goes to stderr; the last
# line on stdout is the tarball's path.
set -euo pipefail

NAME=service
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLES="$(dirname "$HERE")"
BUILD="$HERE/build"
OUT="$EXAMPLES/$NAME.tar.gz"

log() { echo "[$NAME] $*" >&2; }

log "staging application"
STAGE="$BUILD/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/$NAME"
cp "$HERE/configuration.json" "$HERE/heartbeat.py" "$STAGE/$NAME/"

# Write inside the build dir, then rename: a reader never sees half a tarball.
tar -czf "$BUILD/$NAME.tar.gz" -C "$STAGE" "$NAME"
mv -f "$BUILD/$NAME.tar.gz" "$OUT"
log "wrote $OUT"
echo "$OUT"
