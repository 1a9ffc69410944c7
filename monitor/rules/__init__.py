"""Rule plugins: one module per kind, registered in :mod:`monitor.rules.base`."""
