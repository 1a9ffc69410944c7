"""replywatch: tells a team whether it keeps its service promises."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, looked up on first use: reading the installed metadata costs an import that the
    parse worker processes, which import this package too, have no use for."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("replywatch")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
