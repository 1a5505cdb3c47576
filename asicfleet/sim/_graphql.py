"""A small GraphQL executor for simulated firmwares that speak GraphQL (Braiins OS before 25.07).

It parses a query document (operations, variables, fields with arguments and aliases, inline fragments
`... on Type`) and evaluates it against a tree of plain values the simulator builds: a dict is an object
(its `__typename` key, when present, decides inline fragments), a list is a list, a callable is a field
with arguments (called with them, the variables resolved). A field the tree does not have is an error,
as a server validating against its schema refuses a field its release does not know; so a simulator
describes each release by the fields it puts in the tree. Not supported (clients of miners send none):
named fragments, directives, introspection beyond `__typename`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class GraphQLError(Exception):
    """A request the executor refuses: a syntax error, an unknown field, a failed resolver."""


@dataclass
class Field:
    name: str
    alias: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)  # values; `Variable` for `$name`
    selections: list[Field | InlineFragment] | None = None


@dataclass
class InlineFragment:
    type_condition: str | None
    selections: list[Field | InlineFragment]


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class EnumValue:
    name: str


@dataclass
class Operation:
    kind: str  # query / mutation / subscription
    name: str | None
    variable_defaults: dict[str, Any]
    selections: list[Field | InlineFragment]


_TOKEN = re.compile(r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[{}()\[\]:!$=@|&])
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
""", re.VERBOSE)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise GraphQLError(f"Syntax Error: unexpected character {text[position]!r} at {position}")
        position = match.end()
        kind = match.lastgroup
        if kind is not None and kind != "skip":
            out.append((kind, match.group()))
    return out


def _unquote(literal: str) -> str:
    body, out, index = literal[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1]
        if escape == "u":
            out.append(chr(int(body[index + 2:index + 6], 16)))
            index += 6
        else:
            out.append(_ESCAPES.get(escape, escape))
            index += 2
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        if self.index >= len(self.tokens):
            return False
        token_kind, token = self.tokens[self.index]
        return (value is None or token == value) and (kind is None or token_kind == kind)

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if not self.peek(value, kind):
            found = self.tokens[self.index][1] if self.index < len(self.tokens) else "<EOF>"
            raise GraphQLError(f"Syntax Error: expected {value or kind}, found {found!r}")
        self.index += 1
        return self.tokens[self.index - 1][1]

    def document(self) -> list[Operation]:
        operations = []
        while self.index < len(self.tokens):
            operations.append(self.operation())
        if not operations:
            raise GraphQLError("Syntax Error: the document holds no operation")
        return operations

    def operation(self) -> Operation:
        if self.peek("{"):
            return Operation("query", None, {}, self.selection_set())
        kind = self.take(kind="name")
        if kind == "fragment":
            raise GraphQLError("named fragments are not supported by this server")
        if kind not in ("query", "mutation", "subscription"):
            raise GraphQLError(f"Syntax Error: unexpected {kind!r}")
        name = self.take(kind="name") if self.peek(kind="name") else None
        defaults: dict[str, Any] = {}
        if self.peek("("):
            self.take("(")
            while not self.peek(")"):
                self.take("$")
                variable = self.take(kind="name")
                self.take(":")
                self.type_reference()
                defaults[variable] = self.value() if self.peek("=") and self.take("=") else None
            self.take(")")
        return Operation(kind, name, defaults, self.selection_set())

    def type_reference(self) -> None:
        if self.peek("["):
            self.take("[")
            self.type_reference()
            self.take("]")
        else:
            self.take(kind="name")
        if self.peek("!"):
            self.take("!")

    def selection_set(self) -> list[Field | InlineFragment]:
        self.take("{")
        selections: list[Field | InlineFragment] = []
        while not self.peek("}"):
            selections.append(self.selection())
        self.take("}")
        if not selections:
            raise GraphQLError("Syntax Error: empty selection set")
        return selections

    def selection(self) -> Field | InlineFragment:
        if self.peek(kind="spread"):
            self.take(kind="spread")
            condition = None
            if self.peek("on"):
                self.take("on")
                condition = self.take(kind="name")
            elif self.peek(kind="name"):
                raise GraphQLError("named fragments are not supported by this server")
            return InlineFragment(condition, self.selection_set())
        name = self.take(kind="name")
        alias = None
        if self.peek(":"):
            self.take(":")
            alias, name = name, self.take(kind="name")
        arguments: dict[str, Any] = {}
        if self.peek("("):
            self.take("(")
            while not self.peek(")"):
                argument = self.take(kind="name")
                self.take(":")
                arguments[argument] = self.value()
            self.take(")")
        if self.peek("@"):
            raise GraphQLError("directives are not supported by this server")
        selections = self.selection_set() if self.peek("{") else None
        return Field(name, alias, arguments, selections)

    def value(self) -> Any:
        if self.peek("$"):
            self.take("$")
            return Variable(self.take(kind="name"))
        if self.peek(kind="string"):
            return _unquote(self.take(kind="string"))
        if self.peek(kind="number"):
            literal = self.take(kind="number")
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        if self.peek("["):
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value())
            self.take("]")
            return items
        if self.peek("{"):
            self.take("{")
            fields: dict[str, Any] = {}
            while not self.peek("}"):
                key = self.take(kind="name")
                self.take(":")
                fields[key] = self.value()
            self.take("}")
            return fields
        word = self.take(kind="name")
        literals: dict[str, Any] = {"true": True, "false": False, "null": None}
        return literals[word] if word in literals else EnumValue(word)


def parse(text: str) -> list[Operation]:
    """The operations of a GraphQL document; GraphQLError on a syntax error."""
    return _Parser(text).document()


def _resolve_argument(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, Variable):
        if value.name not in variables:
            raise GraphQLError(f'Variable "${value.name}" is not defined')
        return variables[value.name]
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, list):
        return [_resolve_argument(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_argument(v, variables) for k, v in value.items()}
    return value


Guard = Callable[[tuple[str, ...]], bool]
Called = Callable[[tuple[str, ...]], None]


@dataclass(frozen=True)
class _Context:
    variables: Mapping[str, Any]
    allowed: Guard
    called: Called


def _execute(selections: list[Field | InlineFragment], value: Any, type_name: str, path: tuple[str, ...],
             context: _Context) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise GraphQLError(f'Field "{path[-1]}" of type {type_name} has no sub-fields')
    actual_type = str(value.get("__typename", type_name))
    out: dict[str, Any] = {}
    for selection in selections:
        if isinstance(selection, InlineFragment):
            if selection.type_condition in (None, actual_type):
                out.update(_execute(selection.selections, value, actual_type, path, context))
            continue
        key = selection.alias or selection.name
        if selection.name == "__typename":
            out[key] = actual_type
            continue
        if selection.name not in value:
            raise GraphQLError(f'Cannot query field "{selection.name}" on type "{actual_type}".')
        field_path = (*path, selection.name)
        if not context.allowed(field_path):
            raise GraphQLError("Unauthorized")
        resolved = value[selection.name]
        if callable(resolved):
            arguments = {k: _resolve_argument(v, context.variables) for k, v in selection.arguments.items()}
            context.called(field_path)
            try:
                resolved = resolved(arguments)
            except (KeyError, TypeError, ValueError) as exc:
                raise GraphQLError(f"{selection.name}: {exc}") from exc
        out[key] = _complete(selection, resolved, field_path, context)
    return out


def _complete(selection: Field, value: Any, path: tuple[str, ...], context: _Context) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_complete(selection, item, path, context) for item in value]
    if isinstance(value, Mapping):
        if selection.selections is None:
            raise GraphQLError(f'Field "{selection.name}" must have a selection of subfields.')
        return _execute(selection.selections, value, selection.name, path, context)
    if selection.selections is not None:
        raise GraphQLError(f'Field "{selection.name}" must not have a selection since it has no subfields.')
    return value


def execute(document: str, root: Mapping[str, Any], variables: Mapping[str, Any] | None = None,
            operation_name: str | None = None, allowed: Guard = lambda path: True,
            called: Called = lambda path: None) -> dict[str, Any]:
    """Runs a query or mutation against `root` ({"query": {...}, "mutation": {...}}); the GraphQL reply
    body: {"data": ...} or {"errors": [...]} (an error anywhere fails the request, nothing is partial).
    `allowed(path)` says whether a field may be used on this session (GraphQLError "Unauthorized" if not);
    a path starts with the operation kind: ("query", "bos", "info", "version"). `called(path)` hears of each
    field with arguments (a callable in the tree) as it runs: what a simulator counts as a request."""
    try:
        operations = parse(document)
        chosen = [op for op in operations if operation_name is None or op.name == operation_name]
        if not chosen or (operation_name is None and len(operations) > 1):
            raise GraphQLError("Must provide operation name if query contains multiple operations.")
        operation = chosen[0]
        if operation.kind not in root:
            raise GraphQLError(f"Schema is not configured for {operation.kind}s.")
        values = {**{k: v for k, v in operation.variable_defaults.items()}, **(variables or {})}
        kind = operation.kind
        data = _execute(operation.selections, root[kind], kind.capitalize(), (kind,),
                        _Context(values, allowed, called))
    except GraphQLError as exc:
        return {"data": None, "errors": [{"message": str(exc)}]}
    return {"data": data}


__all__ = ["GraphQLError", "execute", "parse"]
