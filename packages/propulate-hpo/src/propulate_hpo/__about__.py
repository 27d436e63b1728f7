"""The version of propulate-hpo, read by the build (hatch) and by ``--version``."""

__version__ = "0.2.0"
