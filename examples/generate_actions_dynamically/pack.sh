#!/usr/bin/env bash
# Pack examples/generate_actions_dynamically.tar.gz: first generates second_NNN actions.
#
# Nothing to build (no env, no third-party packages), so no build venv is needed.
# Progress goes to stderr; the last line on stdout is the tarball's path.
set -euo pipefail

NAME=generate_actions_dynamically
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
