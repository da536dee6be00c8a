"""``liteconfig``: write a commented ``configuration.yml`` for a manager or a node.

``liteconfig -s manager|node -o DIR [--force] [--token-gen]`` writes
``DIR/configuration.yml`` with every key and its default, and with absolute
``log_path: DIR/logs`` and ``data_path: DIR/data`` (SPEC §1). The directories themselves
are left for the service to create.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections.abc import Sequence

from litepipeline.common.config import ROLES, render_yaml
from litepipeline.common.targets import BadTarget, check_labels
from litepipeline.version import __version__

PROG = "liteconfig"
FILE_NAME = "configuration.yml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Write a LitePipeline configuration.yml.")
    parser.add_argument("-s", "--service", required=True, choices=sorted(ROLES), help="which service")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="existing directory to write into")
    parser.add_argument("--force", action="store_true", help=f"overwrite an existing {FILE_NAME}")
    parser.add_argument("--token-gen", action="store_true",
                        help="generate a random auth_token (give the same one to the manager, nodes and CLI)")
    parser.add_argument("-l", "--label", action="append", default=[], metavar="NAME=VALUE",
                        help="a node label (repeatable), e.g. --label gpu=a100 --label zone=b")
    parser.add_argument("-v", "--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _labels(pairs: Sequence[str]) -> dict:
    """``NAME=VALUE`` strings as a checked label map; raises :class:`BadTarget`."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise BadTarget(f"--label {pair!r} must be NAME=VALUE")
        out[name.strip()] = value.strip()
    return check_labels(out, "label")


def _write(path: str, text: str, private: bool) -> None:
    """Write ``text`` to ``path`` atomically; ``private`` files (holding a token) get mode 0600."""
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            fp.write(text)
        # mkstemp makes 0600 files; a config without secrets may be read by anyone, as before.
        if not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``liteconfig``; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    directory = os.path.abspath(os.path.expanduser(args.output))
    if not os.path.isdir(directory):
        print(f"{PROG}: error: output directory does not exist: {args.output}", file=sys.stderr)
        return 1
    path = os.path.join(directory, FILE_NAME)
    if os.path.exists(path) and not args.force:
        print(f"{PROG}: error: {path} already exists; use --force to overwrite it", file=sys.stderr)
        return 1
    overrides = {"log_path": os.path.join(directory, "logs"), "data_path": os.path.join(directory, "data")}
    if args.label:
        if args.service != "node":
            print(f"{PROG}: error: --label is a node key; use it with -s node", file=sys.stderr)
            return 1
        try:
            overrides["labels"] = _labels(args.label)
        except BadTarget as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
    token = secrets.token_urlsafe(32) if args.token_gen else None
    if token:
        overrides["auth_token"] = token
    try:
        _write(path, render_yaml(args.service, overrides), private=bool(token))
    except OSError as exc:
        print(f"{PROG}: error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{args.service} configuration written to {path}")
    if token:
        print(f"auth_token (also in the file; give it to litepipeline with --token or "
              f"$LITEPIPELINE_TOKEN): {token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
