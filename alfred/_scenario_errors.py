"""Turn YAML and pydantic failures into one readable :class:`ConfigError`.

Pydantic's raw errors speak of union tags and internal types; a user editing a YAML file
needs the key path as written (``data.assets[2]``), the line, what was expected and, for a
typo, the nearest allowed key. That translation lives here so the schema module stays a
readable list of fields.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import ConfigError
from engine.text import shorten

_MAX_ERRORS = 8

_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list (lines starting with '- ')",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "date_type": "a date like 2020-01-31",
    "date_parsing": "a date like 2020-01-31",
    "date_from_datetime_parsing": "a date like 2020-01-31",
    "date_from_datetime_inexact": "a date like 2020-01-31 (no time of day)",
}


def yaml_to_config_error(exc: yaml.YAMLError, source: str) -> ConfigError:
    """Malformed YAML: say where (line/column, 1-based) and what the parser expected."""
    if isinstance(exc, yaml.reader.ReaderError):
        code = f" (#x{exc.character:04x})" if isinstance(exc.character, int) else ""
        return ConfigError(
            f"{source}: character {exc.position + 1} is a control character{code} that "
            "YAML does not allow; scenarios are plain UTF-8 "
            "text, so remove it (or save the file as UTF-8 if it was written in another "
            "encoding, such as UTF-16)")
    if isinstance(exc, yaml.constructor.ConstructorError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return ConfigError(
            f"{source}: line {mark.line + 1}, column {mark.column + 1}: {_cut(exc.problem)}. "
            "Scenarios are data, never code: YAML tags such as !!python/... are refused; "
            "write plain values and pick components by registry name."
        )
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        return ConfigError(
            f"{source}: malformed YAML at line {mark.line + 1}, column {mark.column + 1}: "
            f"{_cut(what)}. Check the indentation (spaces, not tabs), a missing ':' after a key, "
            "or an unclosed quote or bracket near that line."
        )
    return ConfigError(f"{source}: malformed YAML: {_cut(str(exc))}")


def bad_scalar_error(exc: ValueError, text: str, source: str) -> ConfigError:
    """A scalar YAML recognises but cannot build (``2020-13-01``): find its line."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        stack = [root] if root is not None else []
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                try:
                    loader.construct_object(node)
                except ValueError:
                    return ConfigError(
                        f"{source}: invalid value {shorten(node.value)} at line "
                        f"{node.start_mark.line + 1}, column {node.start_mark.column + 1}: "
                        f"{_cut(str(exc))}. Fix the value (dates are written YYYY-MM-DD)."
                    )
            elif isinstance(node, yaml.MappingNode):
                stack.extend(v for pair in reversed(node.value) for v in reversed(pair))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(reversed(node.value))
    finally:
        loader.dispose()
    return ConfigError(f"{source}: invalid value: {exc}")


def pydantic_to_config_error(
    exc: ValidationError, raw: dict, text: str, source: str, root: type[BaseModel]
) -> ConfigError:
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # pragma: no cover - the text parsed once already
        tree = None
    lines = []
    errors = exc.errors()
    for err in errors[:_MAX_ERRORS]:
        loc = _clean_loc(err["loc"], raw, err["type"])
        where = _format_loc(loc)
        line = line_of(tree, loc) if tree is not None else None
        at = f"{where} (line {line})" if line is not None else where
        # A check across several keys has no single place; its message names the keys.
        lines.append(f"{at}: {_describe(err, loc, root)}" if loc else _describe(err, loc, root))
    if len(errors) > _MAX_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_ERRORS} more")
    if len(lines) == 1:
        return ConfigError(f"{source}: {lines[0]}")
    return ConfigError(f"{source} has {len(errors)} problems: " + "; ".join(lines))


def _describe(err: dict, loc: tuple, root: type[BaseModel]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        key = str(loc[-1]) if loc else "?"
        near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}? " if near else ""
        tail = ""
        if len(loc) == 1 and not near:
            tail = " (YAML anchors shared by several sections go under a top-level key " \
                   "whose name starts with 'x-', e.g. x-defaults)"
        return (f"unknown key {shorten(key, 80)}; {hint}allowed keys here: "
                f"{', '.join(allowed)}{tail}")
    if kind == "missing":
        return "required key is missing"
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", err["msg"]))
        return _cut(message.removeprefix("Value error, "), 1000)
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {shorten(err['input'])}"
    if kind == "greater_than":
        return f"expected a number > {ctx.get('gt')}, got {shorten(err['input'])}"
    if kind == "greater_than_equal":
        return f"expected a number >= {ctx.get('ge')}, got {shorten(err['input'])}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {shorten(err['input'])}"
    return f"{_cut(err['msg'])}, got {shorten(err['input'])}"


def _cut(text: str | None, limit: int = 400) -> str:
    """A parser's or validator's own sentence, which may quote the user's text, bounded."""
    text = text or ""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _clean_loc(loc: tuple, raw: Any, kind: str) -> tuple:
    """Keep only the parts of pydantic's location that exist in the user's data.

    Pydantic inserts union-member tags (``'Benchmark'``, ``'function-after[...]'``) that
    are not keys of the file; a missing key is the one part absent from the data.
    """
    out: list = []
    current = raw
    for i, part in enumerate(loc):
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            out.append(part)
            current = current[part]
        elif kind == "missing" and i == len(loc) - 1:
            out.append(part)
    return tuple(out)


def _format_loc(loc: tuple) -> str:
    if not loc:
        return "scenario"
    text = ""
    for part in loc:
        name = _cut(str(part), 80)
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text


def _allowed_keys(root: type[BaseModel], loc: tuple) -> list[str]:
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the key (or list item) at ``loc``; anchors and ``<<`` merges followed."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = _mapping_lookup(node, str(part), set())
            if found is None:
                return line
            key_node, node = found
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _mapping_lookup(
    node: yaml.MappingNode, key: str, seen: set[int]
) -> tuple[yaml.Node, yaml.Node] | None:
    if id(node) in seen:
        return None
    seen.add(id(node))
    merges = []
    for key_node, value_node in node.value:
        if key_node.value == "<<":
            merges.append(value_node)
        elif key_node.value == key:
            return key_node, value_node
    for merged in merges:
        candidates = merged.value if isinstance(merged, yaml.SequenceNode) else [merged]
        for candidate in candidates:
            if isinstance(candidate, yaml.MappingNode):
                found = _mapping_lookup(candidate, key, seen)
                if found is not None:
                    return found
    return None
