"""venv-pack tarballs: the member rules, inspection (manager) and extraction (node).

A venv-pack tarball has no top directory, and its ``bin/python`` links to the interpreter
by absolute path, so the application rules (one top directory, links inside it) and
tarfile's "data" filter (which refuses absolute links) do not fit. Its rules: relative,
``..``-free member names; files, directories and links only; no member below a symlink
(writing through one could escape the destination); hard links to members inside; at
most ``MAX_MEMBERS`` members and ``max_size`` bytes unpacked. The manager checks a venv
uploaded on its own with :func:`inspect_env_tarball`; the node applies the same rules
again as it extracts (:func:`extract_env`), whether the env came inside an application
or on its own.
"""
from __future__ import annotations

import os
import posixpath
import tarfile

from litepipeline.common.appspec import MAX_MEMBERS
from litepipeline.common.errors import InvalidApplication

ACTIVATE = "bin/activate"


class EnvMemberChecker:
    """Applies the env member rules one member at a time."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.links: set[str] = set()
        self.names: set[str] = set()
        self.size = 0
        self.count = 0

    def check(self, member: tarfile.TarInfo) -> str:
        """The member's normalized name ('.' for the root), or :class:`InvalidApplication`."""
        parts = [p for p in member.name.split("/") if p not in ("", ".")]
        name = "/".join(parts) or "."
        self.count += 1
        if self.count > MAX_MEMBERS:
            raise InvalidApplication(f"env tarball has more than {MAX_MEMBERS} members")
        if member.name.startswith("/") or ".." in parts or "\x00" in member.name:
            raise InvalidApplication(f"env tarball member '{member.name}' escapes the env directory")
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise InvalidApplication(f"env tarball member '{member.name}' has an unsupported type")
        if any("/".join(parts[:i]) in self.links for i in range(1, len(parts))):
            raise InvalidApplication(f"env tarball member '{member.name}' lies below a symlink")
        if member.islnk():
            target = posixpath.normpath(member.linkname)
            if target.startswith("/") or target.split("/")[0] == "..":
                raise InvalidApplication(f"env tarball hard link '{member.name}' points outside")
        if member.issym():
            self.links.add(name)
        self.size += max(member.size, 0)
        if self.size > self.max_size:
            raise InvalidApplication(f"env tarball unpacks to more than the limit of {self.max_size} bytes")
        self.names.add(name)
        return name


def inspect_env_tarball(path: str, max_size: int) -> int:
    """Validate a venv-pack tarball without extracting it; its unpacked size. Blocking.

    Streams through the archive once (a gzip bomb stops at the size limit); the tarball
    must hold ``bin/activate``, or it is no venv.
    """
    checker = EnvMemberChecker(max_size)
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                checker.check(member)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidApplication(f"venv file is not a valid gzip tar archive: {exc}") from None
    if checker.count == 0:
        raise InvalidApplication("venv tarball is empty")
    if ACTIVATE not in checker.names:
        raise InvalidApplication(f"venv tarball has no {ACTIVATE}: not a venv-pack archive")
    return checker.size


def extract_env(path: str, dest: str, max_size: int) -> None:
    """Extract a venv-pack tarball into ``dest`` under the member rules. Blocking."""
    checker = EnvMemberChecker(max_size)
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = [m for m in tar if checker.check(m) != "."]
            os.makedirs(dest, exist_ok=True)
            kwargs = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
            tar.extractall(dest, members=members, **kwargs)
    except InvalidApplication:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidApplication(f"env tarball {os.path.basename(path)} cannot be extracted: {exc}") from None
