"""Version of the neuron-transplantation distribution (read by hatchling and by run records)."""

__version__ = "0.2.0"
