"""One small reader per source the console shows; each reads what the CLI reads, nothing else."""
