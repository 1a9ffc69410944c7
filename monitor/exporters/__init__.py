"""Exporters: the Prometheus collector and the HTTP server."""
