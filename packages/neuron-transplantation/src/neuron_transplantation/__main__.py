"""``python -m neuron_transplantation`` is the ``neuron-transplantation`` command."""

from neuron_transplantation.cli import main

raise SystemExit(main())
