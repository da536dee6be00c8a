"""Sample applications and hostile tarballs, shared by unit and end-to-end tests."""
from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
from typing import Optional

# An action script that uses nothing but the standard library: reads input.data, writes
# output.data with what the test asks for via its input, exits with the asked code.
ECHO = textwrap.dedent('''
    import json, os, sys, time
    ws = sys.argv[1]
    data = json.load(open(os.path.join(ws, "input.data")))
    name = os.path.basename(os.path.normpath(ws))
    print("running", name, flush=True)
    spec = data.get("_" + name) or data.get("_all") or {}
    if spec.get("sleep"):
        time.sleep(spec["sleep"])
    out = {"data": {"name": name, "input": data}, "actions": spec.get("actions", [])}
    with open(os.path.join(ws, "output.data"), "w") as fp:
        json.dump(out, fp)
    sys.exit(spec.get("exit", 0))
''')

NOOP = "import sys\n"


def dag(*actions: tuple) -> dict:
    """configuration.json from ``(name, [conditions])`` pairs, each running echo.py."""
    return {"actions": [{"name": n, "condition": list(c), "main": "python3 echo.py"} for n, c in actions]}


def make_app(directory: str, config: Optional[dict] = None, files: Optional[dict] = None, top: str = "app",
             name: str = "app.tar.gz", dot_prefix: bool = False) -> str:
    """Write a gzip tarball with one top directory holding configuration.json and ``files``."""
    if config is None:
        config = dag(("first", []), ("second", []), ("third", ["first", "second"]))
    contents = {"configuration.json": json.dumps(config).encode(), "echo.py": ECHO.encode(),
                "noop.py": NOOP.encode()}
    for key, value in (files or {}).items():
        contents[key] = value.encode() if isinstance(value, str) else value
    path = os.path.join(directory, name)
    prefix = f"./{top}" if dot_prefix else top
    with tarfile.open(path, "w:gz") as tar:
        if dot_prefix:
            tar.addfile(_dir("."))
        tar.addfile(_dir(prefix))
        for rel, data in contents.items():
            info = tarfile.TarInfo(f"{prefix}/{rel}")
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def raw_tar(path: str, members: list, gz: bool = True) -> str:
    """A tarball from raw ``TarInfo``/bytes pairs, for hostile shapes a tool wouldn't make."""
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644 if kind == tarfile.REGTYPE else 0o755
    info.size = size
    return info


def valid_config_bytes() -> bytes:
    return json.dumps(dag(("a", []))).encode()


def live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (killed ones may linger as zombies)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fp:
                stat = fp.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry))
    return members


def env_tarball(members: list) -> bytes:
    """A gzip env tarball (no top directory, as venv-pack writes) from ``(TarInfo, bytes-or-None)``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def hostile_env_tarball(outside: str) -> bytes:
    """The issue's env tarball: a symlink to the directory ``outside``, a hard link through
    it to ``outside/victim``, then a regular file of the hard link's name (written into
    the victim by a naive extractor)."""
    return env_tarball([
        (member("bin/", tarfile.DIRTYPE), None),
        (member("bin/activate"), b"true\n"),
        (member("out", tarfile.SYMTYPE, linkname=outside), None),
        (member("h", tarfile.LNKTYPE, linkname="out/victim"), None),
        (member("h"), b"overwritten\n"),
    ])
