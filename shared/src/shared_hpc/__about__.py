"""Version of the shared-hpc distribution (read by hatchling and by run records)."""

__version__ = "0.3.0"
