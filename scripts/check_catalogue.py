"""Checks asicfleet/hardware/catalogue.csv and prints what it holds: rows per make, and how many carry
nominal figures, chip types and a full shape. Exits non-zero when a row is invalid, a reported string names
two models of one make, or the catalogue has fewer than 400 models.

Usage: python scripts/check_catalogue.py
"""

from __future__ import annotations

import sys
from collections import Counter

from asicfleet.hardware import Provenance, catalogue
from asicfleet.hardware._models import _key

CHECKED = {Provenance.ASIC_RS, Provenance.PYASIC}


def main() -> int:
    models = catalogue()  # a row that does not validate raises here, naming the field
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for model in models:
        for text in (model.name, *model.aliases):
            owner = seen.setdefault((model.make.value, _key(text)), model.name)
            if owner != model.name:
                problems.append(f"{model.make.value} {text!r} names both {owner!r} and {model.name!r}")
    if len(models) < 400:
        problems.append(f"only {len(models)} models")
    print(f"{len(models)} models")
    for make, count in Counter(m.make.value for m in models).most_common():
        mine = [m for m in models if m.make.value == make]
        print(f"  {make:12} {count:4}  nominal figures {sum(m.nominal_ths is not None for m in mine):4}  "
              f"chip type {sum(bool(m.chip) for m in mine):4}  "
              f"checked against asic-rs or pyasic {sum(bool(set(m.source) & CHECKED) for m in mine):4}")
    print(f"nominal figures: {sum(m.nominal_ths is not None for m in models)}; chip type: "
          f"{sum(bool(m.chip) for m in models)}; full shape (boards, chips, fans): "
          f"{sum(None not in (m.boards, m.chips_per_board, m.fans) for m in models)}; rated stock profiles: "
          f"{sum(len(m.profiles) for m in models)}; notes: {sum(bool(m.note) for m in models)}")
    print("source: " + ", ".join(f"{p.value} {sum(p in m.source for m in models)}" for p in Provenance)
          + f", none {sum(not m.source for m in models)}")
    for problem in problems:
        print("error:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
