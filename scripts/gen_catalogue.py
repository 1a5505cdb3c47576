"""Regenerates asicfleet/hardware/catalogue.csv from a local asic-rs snapshot's model lists.

Usage: python scripts/gen_catalogue.py /path/to/asic-rs.git
Facts (variant names, reported strings, fans, chips per board) are restated as data rows; the
hand-kept nominal figures of the rows already in the file are preserved.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "asicfleet" / "hardware" / "catalogue.csv"
FIELDS = ["make", "name", "aliases", "algo", "boards", "chips_per_board", "chip", "fans",
          "nominal_ths", "nominal_watts", "cooling", "profiles", "source", "note"]
MAKES = {"antminer": "AntMiner", "whatsminer": "WhatsMiner", "avalon": "AvalonMiner", "bitaxe": "Bitaxe",
         "auradine": "Auradine", "elphapex": "Elphapex", "epic": "ePIC", "futurebit": "FutureBit",
         "nerdaxe": "NerdAxe", "proto": "Proto", "sealminer": "SealMiner", "volcminer": "VolcMiner",
         "braiins": "Braiins"}


def show(git_dir: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], capture_output=True,
                          text=True, check=False).stdout


def parse(git_dir: str, make_dir: str) -> dict[str, dict[str, object]]:
    models = show(git_dir, f"asic-rs-makes/{make_dir}/src/models.rs")
    hw = show(git_dir, f"asic-rs-makes/{make_dir}/src/hardware.rs")
    out: dict[str, dict[str, object]] = {}
    enum = re.search(r"pub enum \w+Model\s*\{(.*?)\n\}", models, re.S)
    if not enum:
        return out
    aliases: list[str] = []
    for line in enum.group(1).splitlines():
        line = line.strip()
        for a in re.findall(r'alias\s*=\s*"([^"]+)"', line):
            aliases.append(a)
        m = re.fullmatch(r"([A-Z]\w*)\s*,?", line)
        if m:
            out[m.group(1)] = {"aliases": aliases, "fans": "", "boards": "", "chips": ""}
            aliases = []
    for arm in re.finditer(r"((?:\w+Model::\w+\s*\|?\s*)+)=>\s*Self\s*\{(.*?)\}", hw, re.S):
        body = arm.group(2)
        fans = re.search(r"fans:\s*Some\((\d+)\)", body)
        boards = re.search(r"boards:\s*Some\(vec!\[(.*?)\]\)", body, re.S)
        chips = re.findall(r"Some\((\d+)\)", boards.group(1)) if boards else []
        nboards = len(boards.group(1).split(",")) if boards and boards.group(1).strip() else ""
        for v in re.findall(r"Model::(\w+)", arm.group(1)):
            if v in out:
                out[v]["fans"] = fans.group(1) if fans else ""
                out[v]["boards"] = nboards
                out[v]["chips"] = chips[0] if chips else ""
    return out


def display_name(make: str, variant: str, aliases: list[str]) -> str:
    name = aliases[0] if aliases else variant.replace("Plus", "+")
    return name


def main() -> None:
    git_dir = sys.argv[1]
    existing: dict[tuple[str, str], dict[str, str]] = {}
    if OUT.exists():
        with OUT.open() as fh:
            for row in csv.DictReader(fh):
                existing[(row["make"], row["name"].lower())] = row
    rows: dict[tuple[str, str], dict[str, object]] = {k: dict(v) for k, v in existing.items()}
    for make_dir, make in MAKES.items():
        for variant, facts in parse(git_dir, make_dir).items():
            aliases = [str(a) for a in facts["aliases"]]  # type: ignore[union-attr]
            name = display_name(make, variant, aliases)
            key = (make, name.lower())
            if key in rows:
                row = rows[key]
                known = set(str(row["aliases"]).split("|")) - {""}
                row["aliases"] = "|".join(sorted(known | set(aliases) | {variant}))
                continue
            rows[key] = {"make": make, "name": name, "aliases": "|".join(sorted(set(aliases) | {variant})),
                         "algo": "SHA256", "boards": facts["boards"], "chips_per_board": facts["chips"],
                         "chip": "", "fans": facts["fans"], "nominal_ths": "", "nominal_watts": "",
                         "cooling": "hydro" if re.search(r"hyd|\d+H|HYD", variant) else "air"}
    with OUT.open("w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS, lineterminator="\n")
        w.writeheader()
        for key in sorted(rows):
            w.writerow(rows[key])
    print(len(rows), "models")


if __name__ == "__main__":
    main()
