"""caravan-gateway: the API gateway in front of every Caravan service (stage 2)."""
