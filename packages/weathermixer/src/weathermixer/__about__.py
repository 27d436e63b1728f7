"""The version of weathermixer, read by the build (``hatch``) and the run records."""

__version__ = "0.2.0"
