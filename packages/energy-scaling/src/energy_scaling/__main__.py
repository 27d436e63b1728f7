"""``python -m energy_scaling`` is the ``energy-scaling`` command."""

from energy_scaling.cli import main

raise SystemExit(main())
