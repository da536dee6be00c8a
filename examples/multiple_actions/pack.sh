#!/usr/bin/env bash
# Pack examples/multiple_actions.tar.gz: three actions sharing one venv-pack env.
#
# Usage: [PYTHON=python3.11] [LITEPIPELINE_SRC=path-or-requirement] ./pack.sh
#   PYTHON            interpreter for the venvs (default python3); nodes running this
#                     app need the same Python version at the same path
#   LITEPIPELINE_SRC  what to pip-install into the app env for litepipeline.action
#                     (default: this repository; or a wheel, sdist or requirement)
# Progress goes to stderr; the last line on stdout is the tarball's path.
set -euo pipefail

NAME=multiple_actions
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLES="$(dirname "$HERE")"
REPO="$(dirname "$EXAMPLES")"
PYTHON="${PYTHON:-python3}"
LITEPIPELINE_SRC="${LITEPIPELINE_SRC:-$REPO}"
BUILD="$HERE/build"
OUT="$EXAMPLES/$NAME.tar.gz"

log() { echo "[$NAME] $*" >&2; }

# The build venv holds the packing tools; it is reused unless PYTHON changed.
build_venv() {
    local want
    want="$("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    if [ -f "$BUILD/venv/.ready" ] && [ "$(cat "$BUILD/venv/.ready")" = "$want" ]; then
        return
    fi
    log "creating build venv with $want"
    rm -rf "$BUILD/venv"
    "$PYTHON" -m venv "$BUILD/venv"
    "$BUILD/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
    "$BUILD/venv/bin/python" -m pip install -q --disable-pip-version-check "venv-pack>=0.2" >&2
    echo "$want" > "$BUILD/venv/.ready"
}

mkdir -p "$BUILD"
build_venv

# The app env is rebuilt every time so it always carries the current helper. It has
# no pip (--without-pip): the actions never install anything, and the tarball stays small.
log "creating app env"
rm -rf "$BUILD/appvenv"
"$PYTHON" -m venv --copies --without-pip "$BUILD/appvenv"
# A default venv has bin/python3 -> /abs/path/of/base/python3, an absolute symlink that
# safe extractors (tarfile's "data" filter) refuse. --copies avoids it; keep one copy
# and make the other names relative links to it, so the tarball carries one binary.
for exe in "$BUILD/appvenv/bin/"python*; do
    [ "$(basename "$exe")" = python3 ] || ln -sf python3 "$exe"
done
src="$LITEPIPELINE_SRC"
if [ "$src" = "$REPO" ]; then
    # pip builds a local project in place, leaving build/ and *.egg-info in the
    # repository; build from a copy (without examples/ and other heavy dirs) instead.
    src="$BUILD/src"
    rm -rf "$src"
    mkdir -p "$src"
    (cd "$REPO" && tar -cf - --exclude=./.git --exclude=./examples --exclude=./build \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=./.venv .) | tar -xf - -C "$src"
fi
# --no-compile: the env would carry a .pyc for every module of the package, while an
# action imports only the helper (Python compiles that on first use).
"$BUILD/venv/bin/python" -m pip --python "$BUILD/appvenv/bin/python" install \
    -q --disable-pip-version-check --no-deps --no-compile "$src" >&2

log "staging application"
STAGE="$BUILD/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/$NAME/venvs"
cp "$HERE/configuration.json" "$HERE/first.py" "$HERE/second.py" "$HERE/third.py" "$STAGE/$NAME/"
"$BUILD/venv/bin/venv-pack" -q -p "$BUILD/appvenv" -o "$STAGE/$NAME/venvs/venv.tar.gz"
chmod 644 "$STAGE/$NAME/venvs/venv.tar.gz"  # venv-pack leaves its temp file's 0600

# Write inside the build dir, then rename: a reader never sees half a tarball.
tar -czf "$BUILD/$NAME.tar.gz" -C "$STAGE" "$NAME"
mv -f "$BUILD/$NAME.tar.gz" "$OUT"
log "wrote $OUT"
echo "$OUT"
