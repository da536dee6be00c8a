#!/usr/bin/env bash
# Pack examples/multiple_actions_without_venv.tar.gz: plain scripts run by the node's python3.
#
# Nothing to build (no env, no third-party packages), so no build venv is needed.
# Progress goes to stderr; the last line on stdout is the tarball's path.
set -euo pipefail

NAME=multiple_actions_without_venv
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLES="$(dirname "$HERE")"
BUILD="$HERE/build"
OUT="$EXAMPLES/$NAME.tar.gz"

log() { echo "[$NAME] $*" >&2; }

log "staging application"
STAGE="$BUILD/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/$NAME"
cp "$HERE/configuration.json" "$HERE/first.py" "$HERE/second.py" "$HERE/third.py" "$STAGE/$NAME/"

# Write inside the build dir, then rename: a reader never sees half a tarball.
tar -czf "$BUILD/$NAME.tar.gz" -C "$STAGE" "$NAME"
mv -f "$BUILD/$NAME.tar.gz" "$OUT"
log "wrote $OUT"
echo "$OUT"
