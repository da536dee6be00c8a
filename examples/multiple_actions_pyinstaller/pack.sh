#!/usr/bin/env bash
# Pack examples/multiple_actions_pyinstaller.tar.gz: each action a PyInstaller one-file binary.
#
# Usage: [PYTHON=python3.11] ./pack.sh
#   PYTHON  interpreter bundled into the binaries (default python3). It must be built
#           with a shared libpython (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared), and
#           the binaries run on nodes whose glibc is as new as this machine's or newer.
# Binaries are rebuilt only when their script or litepipeline/action.py changed.
# Progress goes to stderr; the last line on stdout is the tarball's path.
set -euo pipefail

NAME=multiple_actions_pyinstaller
ACTIONS=(first second third)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLES="$(dirname "$HERE")"
REPO="$(dirname "$EXAMPLES")"
PYTHON="${PYTHON:-python3}"
BUILD="$HERE/build"
OUT="$EXAMPLES/$NAME.tar.gz"

log() { echo "[$NAME] $*" >&2; }

# The build venv holds PyInstaller; it is reused unless PYTHON changed, and then the
# old binaries (which bundle the old Python) go too.
build_venv() {
    local want
    want="$("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    if [ -f "$BUILD/venv/.ready" ] && [ "$(cat "$BUILD/venv/.ready")" = "$want" ]; then
        return
    fi
    log "creating build venv with $want"
    rm -rf "$BUILD/venv" "$BUILD/dist"
    "$PYTHON" -m venv "$BUILD/venv"
    "$BUILD/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
    "$BUILD/venv/bin/python" -m pip install -q --disable-pip-version-check "pyinstaller>=5.0" >&2
    echo "$want" > "$BUILD/venv/.ready"
}

mkdir -p "$BUILD"
build_venv

for action in "${ACTIONS[@]}"; do
    binary="$BUILD/dist/$action"
    if [ -x "$binary" ] && [ "$binary" -nt "$HERE/$action.py" ] \
        && [ "$binary" -nt "$REPO/litepipeline/action.py" ]; then
        log "$action is up to date"
        continue
    fi
    log "building $action"
    # --paths lets PyInstaller find litepipeline.action in this repository without
    # installing it; only the helper and what it imports (the stdlib) get bundled.
    # --strip drops debug symbols (pyenv's libpython carries them): 16 MB -> 7 MB each.
    "$BUILD/venv/bin/pyinstaller" --onefile --strip --noconfirm --log-level WARN \
        --name "$action" --paths "$REPO" \
        --distpath "$BUILD/dist" --workpath "$BUILD/work" --specpath "$BUILD/spec" \
        "$HERE/$action.py" >&2
done

log "staging application"
STAGE="$BUILD/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/$NAME"
cp "$HERE/configuration.json" "$STAGE/$NAME/"
for action in "${ACTIONS[@]}"; do
    cp "$BUILD/dist/$action" "$STAGE/$NAME/$action"
done

# Write inside the build dir, then rename: a reader never sees half a tarball.
tar -czf "$BUILD/$NAME.tar.gz" -C "$STAGE" "$NAME"
mv -f "$BUILD/$NAME.tar.gz" "$OUT"
log "wrote $OUT"
echo "$OUT"
