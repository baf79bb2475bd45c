"""One controller per page of the console."""
