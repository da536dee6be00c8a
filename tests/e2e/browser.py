"""Headless Chromium for the web interface's tests (and scripts/screenshots.py).

Debian's ``chromium`` package, driven by Playwright for Python; Playwright's own browser
downloads are never used. Where either is missing the tests skip, saying which.
"""
from __future__ import annotations

import os
import shutil
from typing import Optional

CHROMIUM = os.environ.get("LITEPIPELINE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def missing() -> Optional[str]:
    """Why no browser test can run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install '.[test]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def launch(playwright):  # noqa: ANN001, ANN201
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
