"""The version of petnet, read by the build and checked against release tags."""

__version__ = "0.2.0"
