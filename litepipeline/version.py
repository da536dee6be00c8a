"""The one place the version lives."""
__version__ = "1.0.0"
