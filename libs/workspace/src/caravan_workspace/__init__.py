"""Caravan's workspace tooling: the stage plan, its gates and actions, the runtimes."""

__version__ = "0.1.0"
