"""Showing scan results: a rich table, JSON lines, or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from enum import StrEnum
from ipaddress import IPv4Address

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from asicfleet.data import MinerData
from asicfleet.discovery import ScanRecord
from asicfleet.hardware import lookup_model

COLUMNS = {"ip": "IP", "make": "Make", "model": "Model", "firmware": "Firmware", "version": "Version",
           "hashrate_ths": "TH/s", "expected_ths": "Exp TH/s", "wattage": "W", "efficiency": "J/TH",
           "temp_avg": "Temp °C", "fans": "Fans rpm", "pool": "Pool", "uptime_h": "Up h", "errors": "Errors"}
_NUMERIC = {"hashrate_ths", "expected_ths", "wattage", "efficiency", "temp_avg", "uptime_h"}


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def output_flags(chosen: OutputFormat | None, as_json: bool, as_csv: bool) -> tuple[bool, bool]:
    """`--format json|csv|table` and the older `--json` / `--csv` flags as one (as_json, as_csv) pair;
    contradicting choices are refused."""
    wanted = {OutputFormat.JSON} if as_json else set()
    wanted |= {OutputFormat.CSV} if as_csv else set()
    if chosen is not None:
        wanted.add(chosen)
    if len(wanted) > 1:
        raise ValueError("choose one output: --format table|json|csv (or --json, or --csv)")
    return OutputFormat.JSON in wanted, OutputFormat.CSV in wanted


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """`1 miner`, `2 miners`, `0 miners`."""
    return f"{count:,} {noun if count == 1 else plural_form or noun + 's'}"


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ths(value: float | None) -> str:
    """TH/s with two decimals; below 1 TH/s three significant digits (a Scrypt miner's 0.0155 TH/s is not 0.00)."""
    if value is not None and 0 < abs(value) < 1:
        return f"{value:.3g}"
    return _num(value)


def row(record: ScanRecord) -> dict[str, str]:
    data = record.data
    if data is None:
        return {**dict.fromkeys(COLUMNS, ""), "ip": str(record.ip), "errors": record.error or ""}
    pools = [p for g in data.pools for p in g.pools]
    active = next((p for p in pools if p.active), pools[0] if pools else None)
    return {
        "ip": str(record.ip), "make": data.make, "model": data.model, "firmware": data.firmware,
        "version": data.firmware_version or "",
        "hashrate_ths": _ths(data.hashrate.into_unit("TH/s").value if data.hashrate else None),
        "expected_ths": _ths(data.expected_hashrate.into_unit("TH/s").value if data.expected_hashrate else None),
        "wattage": _num(data.wattage, 0), "efficiency": _num(data.efficiency, 1),
        "temp_avg": _num(data.average_temperature, 1),
        "fans": " ".join(str(int(f.rpm)) for f in data.fans if f.rpm is not None),
        "pool": f"{active.url or ''} {active.user or ''}".strip() if active else "",
        "uptime_h": _num(data.uptime.total_seconds() / 3600 if data.uptime else None, 1),
        "errors": "; ".join(data.errors),
    }


def records_from(inventory: Iterable[MinerData], errors: dict[str, str]) -> list[ScanRecord]:
    records = [ScanRecord(ip=m.ip, data=m) for m in inventory]
    records += [ScanRecord(ip=IPv4Address(ip), error=e) for ip, e in errors.items()]
    return sorted(records, key=lambda r: r.ip)


_MIN_WIDTH = {"ip": 15, "hashrate_ths": 6, "wattage": 5, "efficiency": 4, "temp_avg": 4}  # an IP is never cut
_NARROWEST = ("ip", "miner", "firmware", "hashrate_ths", "wattage", "temp_avg")
_NARROW = ("ip", "make", "model", "firmware", "hashrate_ths", "wattage", "efficiency", "temp_avg", "errors")
_SHORT_HEADINGS = {"temp_avg": "°C", "miner": "Miner"}  # at 80 columns every character counts


def miner_name(make: str, model: str) -> str:
    """Make and model in one column: `Bitaxe BM1370`, `WhatsMiner M50S`, but `Antminer S21` (the model
    already names the make)."""
    if not make or model.lower().startswith(make.lower()[:5]):
        return model
    return f"{make} {model}".strip()


def estimated_watts(data: MinerData) -> str:
    """A miner that reports no power (stock Antminers): its catalogue figure scaled by its hash rate,
    marked `~`; `n/a` when the catalogue has no figure either. Only for the table: CSV and JSON keep
    what the miner said."""
    model = lookup_model(data.make, data.model)
    if model is None or not model.nominal_watts:
        return "n/a"
    ths = data.hashrate.into_unit("TH/s").value if data.hashrate is not None else None
    if ths is not None and model.nominal_ths:
        return f"~{model.nominal_watts * ths / model.nominal_ths:.0f}"
    return f"~{model.nominal_watts:.0f}"


def table(records: list[ScanRecord], title: str | None = None, width: int = 200) -> RenderableType:
    """The fleet as a table. Below 160 columns of terminal only the essential columns are shown, and
    below 120 the errors follow the table as lines of their own; IPs are never cut."""
    found = sum(r.data is not None for r in records)
    failed = sum(r.error is not None for r in records)
    if not records:  # no empty grid of headings: the line says it all (the reason follows on stderr)
        return Text(((title + ": ") if title else "") + "0 miners")
    keys = list(COLUMNS) if width >= 160 else list(_NARROW) if width >= 120 else list(_NARROWEST)
    # the summary sits under the table, where a long listing ends
    caption = plural(found, "miner") + (f", {plural(failed, 'host')} with errors" if failed else "")
    out = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    for key in keys:
        out.add_column(_SHORT_HEADINGS.get(key, COLUMNS.get(key, key)) if width < 120 else COLUMNS[key],
                       justify="right" if key in _NUMERIC else "left",
                       no_wrap=key not in ("errors", "miner"), overflow="fold" if key in ("errors", "miner")
                       else "ellipsis", style="red" if key == "errors" else None,
                       ratio=3 if key == "errors" else None, min_width=_MIN_WIDTH.get(key))
    notes: list[str] = []
    for record in records:
        values = row(record)
        values["miner"] = miner_name(values["make"], values["model"])
        if record.data is not None and not values["wattage"]:
            values["wattage"] = estimated_watts(record.data)
        out.add_row(*(values[k] for k in keys))
        if "errors" not in keys and values["errors"]:
            notes.append(f"[red]{values['ip']}[/]: {escape(values['errors'])}")
    if any(str(cell).startswith("~") for cell in out.columns[keys.index("wattage")].cells):
        notes.append("[dim]~ W: estimated from the model's nominal power (the miner reports none)[/]")
    return Group(out, *notes) if notes else out


def json_lines(records: list[ScanRecord]) -> str:
    """One MinerData JSON object per line; a host that failed is `{"ip": ..., "error": ...}`."""
    return "".join((r.data.model_dump_json() if r.data is not None else r.model_dump_json(exclude={"data"})) + "\n"
                   for r in records)


def csv_text(records: list[ScanRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(row(r) for r in records)
    return buffer.getvalue()
