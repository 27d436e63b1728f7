"""``python -m propulate_hpo`` is the ``propulate-hpo`` command."""

import sys

from propulate_hpo.cli import main

sys.exit(main())
