"""Profile the daemons a benchmark starts with cProfile (a measuring aid, never imported by
LitePipeline itself).

    LP_CPROFILE_DIR=/tmp/prof PYTHONPATH=bench/cprofile .venv/bin/python bench/bench.py

Every ``litemanager``/``litenode`` process started with this directory on ``PYTHONPATH``
writes ``<name>-<pid>.prof`` into ``LP_CPROFILE_DIR`` when it exits (read them with
``python -m pstats``). Call counts are exact, so two versions can be compared per task
on a busy machine where timings are not; cProfile's own overhead inflates the times.
"""
import os
import sys

_DIR = os.environ.get("LP_CPROFILE_DIR")
if _DIR:
    _NAME = os.path.basename(sys.argv[0]) if sys.argv else ""
    if _NAME in ("litemanager", "litenode"):
        import atexit
        import cProfile

        _PROFILE = cProfile.Profile()
        _PROFILE.enable()

        def _dump() -> None:
            _PROFILE.disable()
            _PROFILE.dump_stats(os.path.join(_DIR, f"{_NAME}-{os.getpid()}.prof"))

        atexit.register(_dump)
