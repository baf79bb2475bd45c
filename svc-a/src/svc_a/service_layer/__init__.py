"""Use cases of Catalog (handlers taking a command and the ports they need) and the abstract
ports themselves (repositories, unit of work) that infrastructure implements."""
