"""``python -m propulate_hpo`` is the ``propulate-hpo`` command."""

from propulate_hpo.cli import main

raise SystemExit(main())
