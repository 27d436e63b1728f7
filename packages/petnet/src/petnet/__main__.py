"""``python -m petnet``: the same command line as ``petnet``."""

from petnet.cli import main

raise SystemExit(main())
