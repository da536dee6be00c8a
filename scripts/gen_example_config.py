"""Regenerate configuration.example.yml from the typed configs (a test keeps them in sync)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from litepipeline.common.config import render_yaml  # noqa: E402

HEADER = """\
# LitePipeline configuration: every key of both roles, with its default and meaning.
# `liteconfig -s manager|node -o DIR` writes one of these documents as DIR/configuration.yml,
# with absolute log_path/data_path under DIR. A file lacking newer keys still loads.
"""


def example() -> str:
    return (HEADER + "\n# ---- manager: litemanager -c FILE ----\n" + render_yaml("manager")
            + "---\n# ---- node: litenode -c FILE ----\n" + render_yaml("node"))


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configuration.example.yml")
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(example())
    print(path)
