"""``python -m weathermixer``: the command line."""

from weathermixer.cli import main

raise SystemExit(main())
