"""Errors in the user's words: a pydantic ValidationError or a YAML error becomes lines naming the file,
the key as the user wrote it, and the line, instead of the library's internal path and documentation links."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fleet.controls import BaseControl, ControlEnvelope, control_from_file_content

Loc = tuple[str | int, ...]


class ConfigFileError(ValueError):
    """A control file that cannot be used; the message names the file, the line and the key."""


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be"):
        message = "should be" + message.removeprefix("Input should be")
    return message


def validation_message(exc: ValidationError, source: str) -> str:
    """One line per problem: `SOURCE: MESSAGE`, without pydantic's model names and URLs. A problem in a
    field of an options model is named by its command-line option (`ports` -> `--ports`)."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        name = f"--{str(loc[0]).replace('_', '-')}" if loc else source
        lines.append(f"{name}: {_message(error)}")
    return "\n".join(lines)


def _field_names(model: type[BaseModel]) -> set[str]:
    """Every field name (and alias) anywhere in a model's schema: the vocabulary for 'did you mean'."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(properties)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(model.model_json_schema())
    return names


_VOCABULARY: set[str] | None = None


def _vocabulary() -> set[str]:
    global _VOCABULARY
    if _VOCABULARY is None:
        _VOCABULARY = _field_names(ControlEnvelope) - {"control"}
    return _VOCABULARY


def _user_path(loc: Loc, raw: Any) -> Loc:
    """The internal path of an error (`control, pools, groups, 0, pools, 0, urll`) as the user's file has
    it (`pools, 0, urll`): the inverse of the shapes in `control_from_file_content`."""
    path = list(loc)
    if path[:1] == ["control"]:
        path = path[1:]
    if not isinstance(raw, dict):
        return tuple(path)
    if "kind" in raw:  # a full control: the discriminated union adds the tag
        return tuple(path[1:] if path[:1] == [raw["kind"]] else path)
    if len(raw) != 1:
        return tuple(path)
    key, value = next(iter(raw.items()))
    if path[:1] == [key]:
        path = path[1:]
    if key == "pools":
        grouped = isinstance(value, list) and value and isinstance(value[0], dict) and "pools" in value[0]
        if path[:1] == ["groups"]:
            path = path[1:] if grouped else path[3:] if path[1:3] == [0, "pools"] else path[1:]
    elif path[:1] == [{"fan": "config", "tuning": "config", "scaling": "config", "power_limit": "watts"}.get(key)]:
        path = path[1:]
    return (key, *path)


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _node_at(root: yaml.Node | None, path: Sequence[str | int]) -> tuple[yaml.Node | None, bool]:
    """The YAML node at `path` (or its deepest existing ancestor) and whether the whole path exists;
    for a mapping key, the key's own node, so that the line is the one where the user typed it."""
    node = root
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                return node, False
            node = match[0] if last else match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node, False
    return node, True


def _problems(exc: ValidationError, raw: Any) -> Iterator[tuple[Loc, str]]:
    errors = exc.errors(include_url=False)
    by_parent: dict[Loc, list[Loc]] = {}
    for error in errors:
        if error["type"] == "missing":
            path = _user_path(error["loc"], raw)
            by_parent.setdefault(path[:-1], []).append(path)
    suggested: set[Loc] = set()
    for error in errors:
        path = _user_path(error["loc"], raw)
        if error["type"] == "extra_forbidden":
            missing = [str(p[-1]) for p in by_parent.get(path[:-1], [])]
            close = difflib.get_close_matches(str(path[-1]), missing or sorted(_vocabulary()), n=1, cutoff=0.6)
            if close:
                suggested.add((*path[:-1], close[0]))
            hint = f"; did you mean {close[0]!r}?" if close else ""
            yield path, f"unknown key {path[-1]!r}{hint}"
        elif error["type"] != "missing":
            given = error.get("input")
            shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
            yield path, _message(error) + shown
    for error in errors:
        path = _user_path(error["loc"], raw)
        if error["type"] == "missing" and path not in suggested:  # a typo's missing key is said once
            yield path, f"missing key {path[-1]!r}"


def _where(name: str, root: yaml.Node | None, path: Loc) -> str:
    node, _ = _node_at(root, path)
    if node is None:
        return name
    line = node.start_mark.line + 1
    return f"{name}, line {line}"


def load_control(path: Path) -> BaseControl:
    """Reads and validates a control file (YAML or JSON). Raises ConfigFileError with the file's name,
    the line and the key as written there."""
    name = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigFileError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    root: yaml.Node | None = None
    try:
        if path.suffix == ".json":
            raw = json.loads(text)
        else:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            raw = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{name}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}, line {mark.line + 1}, column {mark.column + 1}" if mark else name
        started = exc.context_mark if exc.context_mark is not mark else None
        context = (f" ({exc.context}" + (f" started on line {started.line + 1}" if started else "") + ")"
                   if exc.context else "")
        raise ConfigFileError(f"{where}: not valid YAML: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{name}: not valid YAML: {exc}") from None
    if root is None and path.suffix == ".json":
        try:  # JSON is YAML too: its nodes give the lines
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
    try:
        return control_from_file_content(raw)
    except ValidationError as exc:
        lines = [f"{_where(name, root, loc)}: {_dotted(loc)}: {message}" for loc, message in _problems(exc, raw)]
        raise ConfigFileError("\n".join(lines)) from None
    except ValueError as exc:
        raise ConfigFileError(f"{name}: {exc}") from None


__all__ = ["ConfigFileError", "load_control", "validation_message"]
