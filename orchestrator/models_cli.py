"""`asicfleet models`: the hardware catalogue, as a table or as JSON (one object per model)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from asicfleet.hardware import Make, MinerModel, catalogue


def _make(text: str) -> Make:
    """The make named case-insensitively; an unknown one is refused with the known list."""
    for make in Make:
        if make.value.lower() == text.strip().lower() or make.name.lower() == text.strip().lower():
            return make
    raise typer.BadParameter(f"unknown make {text!r}; known: {', '.join(m.value for m in Make)}")


def select_models(make: str | None = None) -> list[MinerModel]:
    """The catalogue, or the models of one make."""
    wanted = _make(make) if make else None
    return [m for m in catalogue() if wanted is None or m.make is wanted]


def models_json(models: list[MinerModel]) -> str:
    """One JSON object per line and model, every catalogue field included (empty ones as null)."""
    return "".join(json.dumps(m.model_dump(mode="json")) + "\n" for m in models)


def models_table(models: list[MinerModel]) -> Table:
    counts = Counter(m.make.value for m in models)
    table = Table(title=f"{len(models)} models ({', '.join(f'{k} {v}' for k, v in counts.most_common())})")
    for column in ("make", "name", "algo", "boards", "chips/board", "chip", "fans", "TH/s", "W", "cooling"):
        table.add_column(column)

    def cell(value: object) -> str:
        return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    for m in models:
        table.add_row(m.make.value, m.name, m.algo.value, cell(m.boards), cell(m.chips_per_board), cell(m.chip),
                      cell(m.fans), cell(m.nominal_ths), cell(m.nominal_watts), m.cooling.value)
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def models(
        make: Annotated[str | None, typer.Option(help="only this make, e.g. WhatsMiner")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per model and line")] = False,
    ) -> None:
        """List the hardware catalogue: every known model with its shape and nominal figures."""
        chosen = select_models(make)
        if as_json:
            typer.echo(models_json(chosen), nl=False)
        else:
            Console().print(models_table(chosen))
