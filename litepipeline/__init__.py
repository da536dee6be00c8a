"""LitePipeline: a distributed pipeline system for packaged Python jobs."""
from litepipeline.version import __version__

__all__ = ["__version__"]
