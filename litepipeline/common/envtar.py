"""venv-pack env tarballs (inside an application, or uploaded on their own as venvs): one
set of rules for checking and extracting.

The manager checks every env tarball an application's actions name while the upload is
streamed through (:func:`check_env_stream`); the node extracts with
:func:`safe_extract_env`, which applies the same rules again before writing anything.

An env tarball has no top directory, and its ``bin/python`` is a symlink to the
interpreter by absolute path, so symlinks may point anywhere; what keeps extraction
inside the destination is that nothing is ever written *through* a link:

- member names are relative, without ``..``, NUL or backslash;
- only regular files, directories, symlinks and hard links;
- no member lies below a symlink;
- a hard link points to a regular file that came earlier in the archive (never to a
  symlink, whose target it would share, nor through one);
- no member replaces an earlier link or directory (a file written over an earlier hard
  link would write into the linked file, wherever it is); venv-pack does write one
  regular file (pyvenv.cfg) twice, which is allowed;
- the unpacked size is at most the limit.
"""
from __future__ import annotations

import tarfile
from typing import IO

from litepipeline.common.errors import InvalidApplication

MAX_ENV_MEMBERS = 500_000
ACTIVATE = "bin/activate"


def _name(raw: str) -> str:
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if raw.startswith("/") or ".." in parts or "\x00" in raw or "\\" in raw:
        raise InvalidApplication(f"member '{raw[:200]}' escapes the env directory")
    return "/".join(parts)


class EnvChecker:
    """Applies the env rules one member at a time (streaming: no member is looked at twice)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self.count = 0
        self.paths: set[str] = set()
        self.files: set[str] = set()     # regular files and hard links
        self.regular: set[str] = set()   # regular files only
        self.links: set[str] = set()
        self.parents: set[str] = set()   # directories implied by earlier members' names

    def check(self, member: tarfile.TarInfo) -> str:
        """The member's normalized name ('' for the root entry), or raise InvalidApplication."""
        name = _name(member.name)
        self.count += 1
        if self.count > MAX_ENV_MEMBERS:
            raise InvalidApplication(f"more than {MAX_ENV_MEMBERS} members")
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise InvalidApplication(f"member '{member.name}' has an unsupported type")
        if not name:
            if not member.isdir():
                raise InvalidApplication(f"member '{member.name}' is not a directory")
            return name
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.links:
                raise InvalidApplication(f"member '{member.name}' lies below a symlink")
            self.parents.add(parent)
        if name in self.paths and not (member.isfile() and name in self.regular):
            # venv-pack writes pyvenv.cfg twice (a regular file over a regular file is
            # fine); over a link it would write into whatever the link points to
            raise InvalidApplication(f"member '{member.name}' replaces an earlier link or directory")
        self.paths.add(name)
        if member.issym():
            if name in self.parents:   # a directory earlier members went into
                raise InvalidApplication(f"symlink '{member.name}' replaces a directory")
            self.links.add(name)
        elif member.islnk():
            target = _name(member.linkname)
            if target not in self.files:
                raise InvalidApplication(f"hard link '{member.name}' does not point to an earlier regular "
                                         f"file of the env")
        if member.isfile() or member.islnk():
            self.files.add(name)
        if member.isfile():
            self.regular.add(name)
        self.size += max(member.size, 0)
        if self.size > self.max_size:
            raise InvalidApplication(f"unpacks to more than {self.max_size} bytes")
        return name


def check_env_stream(fileobj: IO[bytes], max_size: int) -> None:
    """Check a gzip env tarball read from ``fileobj`` once, front to back (blocking)."""
    checker = EnvChecker(max_size)
    try:
        with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
            for member in tar:
                checker.check(member)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidApplication(f"not a valid gzip tar archive: {exc}") from None


def safe_extract_env(path: str, dest: str, max_size: int) -> None:
    """Check every member of the env tarball at ``path``, then extract it into ``dest``.

    Blocking (run it in a thread). Nothing is written unless every member passes. This is
    :func:`~litepipeline.common.appspec.safe_extract` of an env (``one_top=False``), whose
    :class:`~litepipeline.common.appspec.MemberRules` apply :class:`EnvChecker`.
    """
    from litepipeline.common.appspec import safe_extract   # (appspec imports this module)

    safe_extract(path, dest, max_size, one_top=False)


def inspect_env_tarball(path: str, max_size: int) -> int:
    """Validate a venv uploaded on its own without extracting it; its unpacked size. Blocking.

    Streams through the archive once (a gzip bomb stops at the size limit) under the env
    rules above; the tarball must hold ``bin/activate``, or it is no venv.
    """
    checker = EnvChecker(max_size)
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                checker.check(member)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidApplication(f"venv file is not a valid gzip tar archive: {exc}") from None
    if checker.count == 0:
        raise InvalidApplication("venv tarball is empty")
    if ACTIVATE not in checker.files:
        raise InvalidApplication(f"venv tarball has no {ACTIVATE}: not a venv-pack archive")
    return checker.size
