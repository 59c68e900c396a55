"""Contract suite: the API a booking system must serve for roomd (see docs/hybrid-api.md)."""
