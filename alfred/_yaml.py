"""Read scenario YAML safely and within bounds.

``yaml.safe_load`` never runs code, but a few hundred bytes can still cost gigabytes: an
alias bomb (nine anchors, each a list of nine aliases of the one before) builds shared
lists whose expansion (in a ``repr``, a validation error, a JSON dump) is 9^9 values, and
a list nested 10,000 deep exhausts Python's recursion limit. A scenario is a few hundred
values a handful of levels deep, so the loader here counts while it composes and refuses,
with a message naming the file and line, anything far beyond that.
"""

from __future__ import annotations

from typing import Any

import yaml

from alfred._scenario_errors import bad_scalar_error, yaml_to_config_error
from engine.errors import ConfigError
from engine.text import shorten

MAX_ALIASES = 100  # alias uses (*name) in one file
MAX_VALUES = 100_000  # values after every alias is expanded
MAX_DEPTH = 100  # nesting levels of mappings and lists


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts alias uses, expanded values and nesting while composing."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self._source = source
        self._aliases = 0
        self._depth = 0
        self._values = 0
        self._sizes: dict[str, int] = {}  # anchor -> values it expands to
        self._open: set[str] = set()  # anchors whose node is being composed

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event, parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._limit(event, f"values are nested more than {MAX_DEPTH} levels deep; "
                              "a scenario needs a handful, so check for a run of '[' or '{' "
                              "or a generated file")
        anchor = event.anchor
        if anchor is not None:
            self._open.add(anchor)
        before = self._values
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)
        self._count(1, event)
        if anchor is not None:
            self._sizes[anchor] = self._values - before
        return node

    def _alias(self, event: yaml.AliasEvent, parent: Any, index: Any) -> Any:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise self._limit(event, f"more than {MAX_ALIASES} YAML aliases (*name); a "
                              "scenario reuses an anchor a few times, so write the repeated "
                              "values out or share fewer of them")
        if event.anchor in self._open:
            raise self._limit(event, f"alias *{event.anchor} is used inside its own anchor "
                              f"&{event.anchor}, which makes an endless value; point it at "
                              "another anchor or write the value out")
        node = super().compose_node(parent, index)
        self._count(self._sizes.get(event.anchor, 1), event)
        return node

    def _count(self, values: int, event: yaml.Event) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise self._limit(event, f"the aliases expand to more than {MAX_VALUES:,} values "
                              "(an alias bomb: anchors of aliases of anchors); a scenario "
                              "holds a few hundred, so remove the nested aliases")

    def _limit(self, event: yaml.Event, problem: str) -> ConfigError:
        mark = event.start_mark
        return ConfigError(f"{self._source}: line {mark.line + 1}, column {mark.column + 1}: "
                           f"{problem}")


def load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Safe-load ``text`` within the bounds above, refusing duplicate keys: ``(data, root
    node)``; ``(None, None)`` for an empty document. Every failure is a
    :class:`ConfigError` naming ``source``."""
    try:  # the reader refuses control characters as it starts
        loader = _BoundedLoader(text, source)
    except yaml.YAMLError as exc:
        raise yaml_to_config_error(exc, source) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise yaml_to_config_error(exc, source) from None
        if node is None:
            return None, None
        reject_duplicate_keys(node, source)  # before merges (<<) are flattened into the node
        try:
            return loader.construct_document(node), node
        except yaml.YAMLError as exc:
            raise yaml_to_config_error(exc, source) from None
        except (ValueError, OverflowError) as exc:  # a scalar PyYAML cannot build: 2020-13-01
            raise bad_scalar_error(ValueError(str(exc)), text, source) from None
    finally:
        loader.dispose()


def reject_duplicate_keys(root: yaml.Node | None, source: str) -> None:
    """``safe_load`` keeps the last of two equal keys silently; a scenario must not."""
    stack = [root] if root is not None else []
    visited: set[int] = set()  # aliases share nodes
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                if isinstance(key, str) and key != "<<" and key in seen:
                    raise ConfigError(
                        f"{source}: key {shorten(key)} appears twice in the same mapping (lines "
                        f"{seen[key]} and {key_node.start_mark.line + 1}); keep one"
                    )
                if isinstance(key, str):
                    seen[key] = key_node.start_mark.line + 1
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
