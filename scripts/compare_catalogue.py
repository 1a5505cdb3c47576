"""Compares the catalogue's hardware shape (boards, chips per board, fans) with the model lists of local
asic-rs and pyasic snapshots (git directories, as `fetch` leaves them) and prints every disagreement.

Usage: python scripts/compare_catalogue.py --asic-rs /path/asic-rs.git --pyasic /path/pyasic.git [--summary] [--write]
Only facts are read (names, reported strings, counts); nothing of either project is copied. A row is matched
through the catalogue's own resolver, so a string either project knows but the catalogue does not is listed too.
With --write, the `source` column's asic-rs and pyasic tags are set from the comparison: a row carries a tag when
that project lists the model and none of its figures disagree (the other tags are kept as they are).
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen_catalogue import MAKES, parse

from asicfleet.hardware import Provenance, lookup_model

CATALOGUE = Path(__file__).resolve().parents[1] / "asicfleet" / "hardware" / "catalogue.csv"

PYASIC_MAKES = {"ANTMINER": "AntMiner", "WHATSMINER": "WhatsMiner", "AVALONMINER": "AvalonMiner",
                "INNOSILICON": "Innosilicon", "GOLDSHELL": "Goldshell", "AURADINE": "Auradine", "EPIC": "ePIC",
                "BITAXE": "Bitaxe", "LUCKYMINER": "LuckyMiner", "ICERIVER": "IceRiver", "HAMMER": "Hammer",
                "VOLCMINER": "VolcMiner", "ELPHAPEX": "Elphapex", "BRAIINS": "Braiins"}


@dataclass
class Shape:
    source: str
    make: str
    name: str
    boards: int | None
    chips: int | None
    fans: int | None


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, text=True, check=True).stdout


def number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def asic_rs_shapes(git_dir: str) -> list[Shape]:
    shapes = []
    for make_dir, make in MAKES.items():
        for variant, facts in parse(git_dir, make_dir).items():
            names = [str(a) for a in facts["aliases"]] or [variant]  # type: ignore[attr-defined]
            shapes.append(Shape("asic-rs", make, names[0], number(str(facts["boards"])),
                                number(str(facts["chips"])), number(str(facts["fans"]))))
    return shapes


def pyasic_shapes(git_dir: str) -> list[Shape]:
    enums: dict[str, dict[str, str]] = {}
    models_py = git(git_dir, "show", "HEAD:pyasic/device/models.py")
    for block in re.finditer(r"class (\w+)\(MinerModelType\):(.*?)(?=\nclass |\Z)", models_py, re.S):
        enums[block.group(1)] = dict(re.findall(r'^\s+(\w+) = "([^"]*)"', block.group(2), re.M))
    groups = dict(re.findall(r"^\s+([A-Z]+) = (\w+Models)$", models_py, re.M))
    shapes = []
    files = git(git_dir, "ls-tree", "-r", "--name-only", "HEAD", "pyasic/miners/device/models").split()
    for path in files:
        if not path.endswith(".py"):
            continue
        source = git(git_dir, "show", f"HEAD:{path}")
        for cls in re.finditer(r"class \w+\(\w+\):(.*?)(?=\nclass |\Z)", source, re.S):
            body = cls.group(1)
            raw = re.search(r"raw_model = MinerModel\.(\w+)\.(\w+)", body)
            if not raw or raw.group(1) not in PYASIC_MAKES:
                continue
            name = enums.get(groups.get(raw.group(1), ""), {}).get(raw.group(2))
            if name is None:
                continue

            def field(key: str, text: str = body) -> int | None:
                found = re.search(rf"expected_{key} = (\d+)", text)
                return int(found.group(1)) if found else None

            shapes.append(Shape("pyasic", PYASIC_MAKES[raw.group(1)], name, field("hashboards"),
                                field("chips"), field("fans")))
    return shapes


def write_tags(listed: dict[tuple[str, str], set[str]], disagree: set[tuple[str, str, str]]) -> None:
    with CATALOGUE.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    for row in rows:
        key = (row["make"], row["name"])
        tags = {t for t in row["source"].split("|") if t} - {"asic-rs", "pyasic"}
        tags |= {p for p in listed.get(key, set()) if (*key, p) not in disagree}
        row["source"] = "|".join(p.value for p in Provenance if p.value in tags)
    with CATALOGUE.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asic-rs", required=True, help="git directory of an asic-rs snapshot")
    parser.add_argument("--pyasic", required=True, help="git directory of a pyasic snapshot")
    parser.add_argument("--summary", action="store_true", help="print only the counts")
    parser.add_argument("--write", action="store_true", help="set the asic-rs and pyasic tags of the source column")
    args = parser.parse_args()
    shapes = asic_rs_shapes(args.asic_rs) + pyasic_shapes(args.pyasic)
    unknown: list[Shape] = []
    differ: list[str] = []
    agree = {"asic-rs": 0, "pyasic": 0}
    listed: dict[tuple[str, str], set[str]] = {}  # (make, row name) -> the projects that list it and agree
    disagree: set[tuple[str, str, str]] = set()
    for shape in shapes:
        model = lookup_model(shape.make, shape.name)
        if model is None:
            unknown.append(shape)
            continue
        ours = {"boards": model.boards, "chips": model.chips_per_board, "fans": model.fans}
        theirs = {"boards": shape.boards, "chips": shape.chips, "fans": shape.fans}
        wrong = [f"{k} {ours[k]} vs {v}" for k, v in theirs.items() if v is not None and ours[k] != v]
        row = (model.make.value, model.name)
        if wrong:
            differ.append(f"{shape.source:7} {shape.make} {shape.name!r} -> {model.name!r}: ours {', '.join(wrong)}")
            disagree.add((*row, shape.source))
        else:
            agree[shape.source] += 1
            listed.setdefault(row, set()).add(shape.source)
    if args.write:
        write_tags(listed, disagree)
    if not args.summary:
        for line in differ:
            print("differs:", line)
        for shape in unknown:
            print(f"unknown: {shape.source:7} {shape.make} {shape.name!r}")
    print(f"asic-rs models {sum(s.source == 'asic-rs' for s in shapes)}, pyasic models "
          f"{sum(s.source == 'pyasic' for s in shapes)}; agree asic-rs {agree['asic-rs']}, pyasic "
          f"{agree['pyasic']}; differ {len(differ)}; not catalogued {len(unknown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
