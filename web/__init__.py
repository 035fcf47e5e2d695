"""The web interface of the issue index: server-rendered pages served by ``python -m pipeline.api``."""
