"""Orders' domain: the Order aggregate, its state machine, events and errors (pure Python)."""
