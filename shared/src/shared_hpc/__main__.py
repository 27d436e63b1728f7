"""``python -m shared_hpc``: the same as the ``shared-hpc`` command."""

from shared_hpc.cli import main

raise SystemExit(main())
