"""``python -m oialr`` is the ``oialr`` command."""

from oialr.cli import main

raise SystemExit(main())
