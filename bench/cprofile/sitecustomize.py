"""Profile the daemons a benchmark starts with cProfile (a measuring aid, never imported by
LitePipeline itself).

    LP_CPROFILE_DIR=/tmp/prof PYTHONPATH=bench/cprofile .venv/bin/python bench/bench.py

Every ``litemanager``/``litenode`` process started with this directory on ``PYTHONPATH``
writes ``<name>-<pid>.prof`` into ``LP_CPROFILE_DIR`` when it exits (read them with
``python -m pstats``). Call counts are exact, so two versions can be compared per task
on a busy machine where timings are not; cProfile's own overhead inflates the times.
With ``LP_CPROFILE_CLOCK=cpu`` the times are the process's CPU time instead of wall time,
so a call that waits (``epoll``, a ``send`` that yields the core to the woken receiver)
counts only what it computed: the figure to compare on a shared, loaded machine.
"""
import os
import sys

_DIR = os.environ.get("LP_CPROFILE_DIR")
if _DIR:
    _NAME = os.path.basename(sys.argv[0]) if sys.argv else ""
    if _NAME in ("litemanager", "litenode"):
        import atexit
        import cProfile
        import time

        if os.environ.get("LP_CPROFILE_CLOCK") == "cpu":
            _PROFILE = cProfile.Profile(time.process_time)
        else:
            _PROFILE = cProfile.Profile()
        _PROFILE.enable()

        def _dump() -> None:
            _PROFILE.disable()
            _PROFILE.dump_stats(os.path.join(_DIR, f"{_NAME}-{os.getpid()}.prof"))

        atexit.register(_dump)
