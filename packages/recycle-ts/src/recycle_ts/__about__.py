"""Version of the recycle-ts distribution (read by hatchling and by run records)."""

__version__ = "0.1.0"
