"""The one exception type that means "the user's input is wrong", shared by every package.

Library code raises ``UserError`` (or a subclass) for what the user can fix: a bad setting, a
missing or foreign file, data that do not fit. The command line (``shared_hpc.run_main``)
prints its message as one line and exits with code 2; every other exception is a defect and
keeps its traceback. It is a ``ValueError``, so code that catches bad values catches it too.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """Input the user can fix; the command line reports it in one line with exit code 2."""
