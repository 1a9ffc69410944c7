"""The keys a config section accepts, for "did you mean" hints on unknown keys and plain type messages."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from monitor.plugins import Registry, SecretRef


def _resolve(annotation: Any, node: Any) -> Any:
    """``annotation`` without ``Annotated``, ``Optional`` and plugin dispatch (by the section's ``kind``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        for item in meta:
            registry = getattr(getattr(item, "func", None), "__self__", None)
            if isinstance(registry, Registry):
                if not isinstance(node, Mapping):
                    return None
                try:
                    return registry.get(str(node.get("kind"))).config
                except Exception:  # an unknown kind is reported on its own
                    return None
        return _resolve(base, node)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                found = _resolve(arg, node)
                if found is not None:
                    return found
        return None
    return annotation


def known_keys(root: type[BaseModel], loc: Sequence[int | str], data: Any) -> list[str]:
    """The keys the section at ``loc`` (a pydantic error location, without the bad key) accepts."""
    annotation: Any = root
    node = data
    for part in loc:
        annotation = _resolve(annotation, node)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        elif origin in (dict, Mapping) and isinstance(part, str):
            annotation = get_args(annotation)[1]
        elif origin in (list, tuple) and isinstance(part, int):
            annotation = get_args(annotation)[0]
        else:
            return []
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    model = _resolve(annotation, node)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    keys: list[str] = []
    for name, field in model.model_fields.items():
        if field.annotation is SecretRef or SecretRef in get_args(field.annotation):
            keys += [f"{name}_env", f"{name}_file"]
        else:
            keys.append(field.alias or name)
    return keys


def did_you_mean(key: str, known: Sequence[str]) -> str:
    """``; did you mean 'sent'?`` for the known key nearest to ``key`` ('' when none is near)."""
    near = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if not near:
        near = [k for k in known if k.lower() == key.lower() or k.replace("_", "") == key.replace("_", "")]
    return f"; did you mean {near[0]!r}?" if near else ""


_INSTANCE_OF = re.compile(r" or instance of \w+")
_PLAIN_TYPES = {
    "dict_type": "expected a mapping (key: value pairs)",
    "model_type": "expected a mapping (key: value pairs)",
    "model_attributes_type": "expected a mapping (key: value pairs)",
    "dataclass_type": "expected a mapping (key: value pairs)",
    "list_type": "expected a list",
}


def plain_message(error_type: str, message: str) -> str:
    """A pydantic message without the names of internal classes (``instance of ImapFolders``)."""
    if error_type in _PLAIN_TYPES:
        return _PLAIN_TYPES[error_type]
    return _INSTANCE_OF.sub("", message)
