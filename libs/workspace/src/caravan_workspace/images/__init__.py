"""Container images: the Debian base built from Debian packages (base), the per-deployable images
(build), and the thin Docker CLI wrapper both use (docker)."""
