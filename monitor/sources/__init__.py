"""Source plugins: one module per kind, registered by name in :mod:`monitor.sources.base`."""

from __future__ import annotations

import importlib

BUILTIN = ("imap", "maildir", "mbox")
_loaded = False


def load_builtin() -> None:
    """Import the built-in source modules so that they register themselves."""
    global _loaded
    if _loaded:
        return
    for name in BUILTIN:
        importlib.import_module(f"monitor.sources.{name}")
    _loaded = True
