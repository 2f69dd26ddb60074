"""tagship: turn a git tag into a running release on your own servers."""

__version__ = "0.1.0"
