"""venv-pack tarballs uploaded on their own: the manager's inspection.

The rules are the one tar-member rule set, :class:`~litepipeline.common.appspec.MemberRules`
with ``one_top=False`` (a venv-pack tarball has no top directory, and its ``bin/python``
links to the interpreter by absolute path). The node applies the same rules again as it
extracts (:func:`litepipeline.common.appspec.safe_extract` with ``one_top=False``), whether
the env came inside an application or on its own.
"""
from __future__ import annotations

import tarfile

from litepipeline.common.appspec import MemberRules
from litepipeline.common.errors import InvalidApplication

ACTIVATE = "bin/activate"


def inspect_env_tarball(path: str, max_size: int) -> int:
    """Validate a venv-pack tarball without extracting it; its unpacked size. Blocking.

    Streams through the archive once (a gzip bomb stops at the size limit); the tarball
    must hold ``bin/activate``, or it is no venv.
    """
    rules = MemberRules(max_size, one_top=False)
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                rules.check(member)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidApplication(f"venv file is not a valid gzip tar archive: {exc}") from None
    if rules.count == 0:
        raise InvalidApplication("venv tarball is empty")
    rules.finish()
    if ACTIVATE not in rules.files:
        raise InvalidApplication(f"venv tarball has no {ACTIVATE}: not a venv-pack archive")
    return rules.size
