"""replywatch: tells a team whether it keeps its service promises."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("replywatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
