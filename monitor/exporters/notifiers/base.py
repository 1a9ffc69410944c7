"""What every notifier plugin shares: its config base and the notifier registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.plugins import NOTIFIERS_GROUP, Plugin, PluginConfig, Registry


class NotifierConfigBase(PluginConfig):
    """Fields every notifier kind shares (a subclass narrows ``kind`` to its Literal)."""


NotifierFactory = Callable[[str, Any], object]
"""Builds a notifier from its name and its validated config (of its own config class), without I/O."""
NotifierPlugin = Plugin[NotifierConfigBase, NotifierFactory]
"""A notifier plugin, named by an entry point of the ``replywatch.notifiers`` group."""

NOTIFIERS: Registry[NotifierConfigBase, NotifierFactory] = Registry(NOTIFIERS_GROUP, NotifierConfigBase)
"""Every notifier kind, from the ``replywatch.notifiers`` entry points."""
