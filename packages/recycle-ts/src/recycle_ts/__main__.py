"""``python -m recycle_ts`` is the ``recycle-ts`` command."""

from recycle_ts.cli import main

raise SystemExit(main())
