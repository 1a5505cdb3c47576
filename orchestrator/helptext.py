"""Help that fits 80 columns: click's plain layout (option names and defaults never cut) with metavars
that say what to type (N, SECONDS, FILE) instead of Python types (<bool>, <list[str]>)."""

from __future__ import annotations

from typing import Any, get_args

_SECONDS = ("timeout", "pause", "seconds", "hold")
_NAMED = {"ports": "MAP", "site": "NAME", "exclude": "TARGET", "target": "TARGET", "filter_": "KEY=VALUE",
          "resume": "SCAN-ID", "max_fail": "PERCENT", "format_": "table|json|csv", "mix": "FAMILIES",
          "faults": "FAULT=N,...", "subnet": "CIDR", "from_env": "VARIABLE", "name": "NAME"}


def _metavar(param: Any) -> str:
    """A plain metavar from typer's description of the parameter (typer ships its own click)."""
    name = str(param.name or "value")
    desc = param.type_descriptor
    if param.param_type_name == "argument":
        return name.upper().replace("_", "-")
    annotation = desc.annotation
    if desc.is_list and get_args(annotation):
        annotation = get_args(annotation)[0]
    if name in _NAMED:
        return _NAMED[name]
    if desc.is_path:
        return "FILE"
    if desc.is_choice:
        return "|".join(str(c) for c in desc.choices or ())
    if annotation is float:
        return "SECONDS" if any(word in name for word in _SECONDS) else "NUMBER"
    if annotation is int:
        return "N"
    return "TEXT"


def plain_help(command: Any) -> Any:
    """Gives every option that takes a value (and every argument) a plain metavar, recursively."""
    for param in command.params:
        is_flag = bool(getattr(param, "is_flag", False) or getattr(param, "count", False))
        if not is_flag and param.metavar is None and hasattr(param, "type_descriptor"):
            param.metavar = _metavar(param)
        if param.param_type_name == "argument":
            _plain_argument(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


def _plain_argument(param: Any) -> None:
    """`TARGETS...` in the help, `[TARGETS]...` or `CONFIG` in the usage line: no Python type, no braces."""
    many = "..." if param.nargs != 1 else ""
    usage = param.metavar if param.required else f"[{param.metavar}]"
    param.display_type_rich = lambda ctx: None
    param._rich_display_name = lambda: param.metavar + many
    param._usage_display_name = lambda: usage + many
