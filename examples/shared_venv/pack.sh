#!/usr/bin/env bash
# Pack the shared_venv example: one venv-pack venv, deployed once with `venv create`, and
# two applications (hello, stats) whose actions name that venv by its id.
#
# Usage:
#   ./pack.sh                  writes examples/shared_venv.venv.tar.gz (the venv)
#   VENV_ID=<id> ./pack.sh     also writes examples/shared_venv_hello.tar.gz and
#                              examples/shared_venv_stats.tar.gz, their env set to <id>
#   [PYTHON=python3.11] [LITEPIPELINE_SRC=path-or-requirement] as for multiple_actions
# Progress goes to stderr; stdout lists the tarballs written, one a line.
set -euo pipefail

NAME=shared_venv
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLES="$(dirname "$HERE")"
REPO="$(dirname "$EXAMPLES")"
PYTHON="${PYTHON:-python3}"
LITEPIPELINE_SRC="${LITEPIPELINE_SRC:-$REPO}"
VENV_ID="${VENV_ID:-}"
BUILD="$HERE/build"
VENV_OUT="$EXAMPLES/$NAME.venv.tar.gz"

log() { echo "[$NAME] $*" >&2; }

if [ -n "$VENV_ID" ] && ! [[ "$VENV_ID" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]; then
    echo "VENV_ID must be the venv id printed by 'litepipeline HOST:PORT venv create', got: $VENV_ID" >&2
    exit 2
fi

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

# The shared venv: the litepipeline.action helper both applications import. It is what a
# heavy dependency (numpy, torch, ...) would be in real use: uploaded once, not inside
# every application tarball.
pack_venv() {
    log "creating the shared venv"
    rm -rf "$BUILD/sharedvenv"
    "$PYTHON" -m venv --copies --without-pip "$BUILD/sharedvenv"
    # --copies avoids an absolute bin/python3 link; the other names link to it
    for exe in "$BUILD/sharedvenv/bin/"python*; do
        [ "$(basename "$exe")" = python3 ] || ln -sf python3 "$exe"
    done
    local src="$LITEPIPELINE_SRC"
    if [ "$src" = "$REPO" ]; then
        # build from a copy, so pip leaves no build/ or *.egg-info in the repository
        src="$BUILD/src"
        rm -rf "$src"
        mkdir -p "$src"
        (cd "$REPO" && tar -cf - --exclude=./.git --exclude=./examples --exclude=./build \
            --exclude='*.egg-info' --exclude=__pycache__ --exclude='./.venv*' .) | tar -xf - -C "$src"
    fi
    "$BUILD/venv/bin/python" -m pip --python "$BUILD/sharedvenv/bin/python" install \
        -q --disable-pip-version-check --no-deps --no-compile "$src" >&2
    "$BUILD/venv/bin/venv-pack" -q -f -p "$BUILD/sharedvenv" -o "$BUILD/$NAME.venv.tar.gz"
    chmod 644 "$BUILD/$NAME.venv.tar.gz"   # venv-pack leaves its temp file's 0600
    mv -f "$BUILD/$NAME.venv.tar.gz" "$VENV_OUT"
    log "wrote $VENV_OUT (upload it: litepipeline HOST:PORT venv create -f $VENV_OUT -n shared)"
    echo "$VENV_OUT"
}

# One application: its files, with every "env": "VENV_ID" set to the venv's id.
pack_app() {
    local app="$1" out="$EXAMPLES/${NAME}_$1.tar.gz" stage="$BUILD/stage/$1"
    rm -rf "$stage"
    mkdir -p "$stage/$app"
    cp "$HERE/$app/"*.py "$stage/$app/"
    sed "s/\"VENV_ID\"/\"$VENV_ID\"/g" "$HERE/$app/configuration.json" > "$stage/$app/configuration.json"
    tar -czf "$BUILD/${NAME}_$app.tar.gz" -C "$stage" "$app"
    mv -f "$BUILD/${NAME}_$app.tar.gz" "$out"
    log "wrote $out"
    echo "$out"
}

mkdir -p "$BUILD"
if [ -z "$VENV_ID" ] || [ ! -f "$VENV_OUT" ]; then
    build_venv
    pack_venv
fi
if [ -n "$VENV_ID" ]; then
    pack_app hello
    pack_app stats
fi
