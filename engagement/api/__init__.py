"""The HTTP API: a FastAPI app built from settings, a database and a clock."""
