"""Known miner models and their nominal figures, loaded once from ``catalogue.csv`` (data, no code per model).

Each row: make, canonical name, the strings firmwares report for it (``|``-separated), algorithm, hashboards,
chips per board, chip type, fans, nominal hash rate (TH/s) and power (W) of the stock (default) profile, cooling,
the other stock profiles the maker rates (``name=TH/s@W``, ``|``-separated), where the row's facts come from
(``source``: ``|``-separated provenance tags) and a short note. Empty cells are unknown.
Model strings resolve case-, space- and punctuation-insensitively; an unknown string resolves to None.
"""

from __future__ import annotations

import csv
import io
import re
from enum import StrEnum
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator

from asicfleet.data import HashAlgorithm, MinerHardware


class Make(StrEnum):
    ANTMINER = "AntMiner"
    WHATSMINER = "WhatsMiner"
    AVALON = "AvalonMiner"
    BITAXE = "Bitaxe"
    AURADINE = "Auradine"
    BRAIINS = "Braiins"
    ELPHAPEX = "Elphapex"
    EPIC = "ePIC"
    FUTUREBIT = "FutureBit"
    GOLDSHELL = "Goldshell"
    HAMMER = "Hammer"
    ICERIVER = "IceRiver"
    INNOSILICON = "Innosilicon"
    LUCKYMINER = "LuckyMiner"
    NERDAXE = "NerdAxe"
    PROTO = "Proto"
    SEALMINER = "SealMiner"
    VOLCMINER = "VolcMiner"


class Cooling(StrEnum):
    AIR = "air"
    HYDRO = "hydro"
    IMMERSION = "immersion"


class Provenance(StrEnum):
    """Where a row's facts come from; the report of the pass that checked them names the snapshots and pages."""

    ASIC_RS = "asic-rs"  # boards, chips per board and fans agree with asic-rs's model list
    PYASIC = "pyasic"  # ... with pyasic's model classes
    REPLIES = "replies"  # the shape (or the chip) is what captured firmware replies show
    SPEC = "spec"  # nominal figures match the maker's published rating (as a public page restates it)
    ANNOUNCED = "announced"  # nominal figures as the maker announced them, not found on a spec sheet
    FAMILY = "family"  # nominal figures are the family's: the maker rates no chip bin on its own


class StockProfile(BaseModel):
    """A stock work mode the maker rates apart from the default one (e.g. a low-power or high-performance mode)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    nominal_ths: float = Field(gt=0)
    nominal_watts: float = Field(gt=0)

    @classmethod
    def parse(cls, text: str) -> StockProfile:
        """``Low=180@2900`` -> the profile ``Low`` at 180 TH/s and 2900 W."""
        name, _, figures = text.partition("=")
        ths, _, watts = figures.partition("@")
        return cls(name=name.strip(), nominal_ths=float(ths), nominal_watts=float(watts))


class MinerModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    make: Make
    name: str
    aliases: tuple[str, ...] = ()
    algo: HashAlgorithm = HashAlgorithm.SHA256
    boards: int | None = None
    chips_per_board: int | None = None
    chip: str | None = None
    fans: int | None = None
    nominal_ths: float | None = None
    nominal_watts: float | None = None
    cooling: Cooling = Cooling.AIR
    profiles: tuple[StockProfile, ...] = ()
    source: tuple[Provenance, ...] = ()
    note: str | None = None

    @field_validator("boards", "chips_per_board", "fans", "nominal_ths", "nominal_watts", "chip", "note",
                     mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("aliases", "source", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return tuple(a for a in value.split("|") if a) if isinstance(value, str) else value

    @field_validator("profiles", mode="before")
    @classmethod
    def _profiles(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(StockProfile.parse(p) for p in value.split("|") if p.strip())
        return value

    def profile(self, name: str) -> StockProfile | None:
        """A rated stock profile by name (case-insensitive); the default one is the row's nominal figures."""
        wanted = name.strip().lower()
        return next((p for p in self.profiles if p.name.lower() == wanted), None)

    @property
    def hardware(self) -> MinerHardware:
        return MinerHardware(board_count=self.boards, chips_per_board=self.chips_per_board, fans=self.fans)


_PREFIXES = ("antminer", "avalonminer", "avalon", "whatsminer", "bitaxe")


def _key(name: str) -> str:
    """Normalises a model string: case, spaces, punctuation (except '+'), a '(..)' tail and a make prefix go."""
    name = re.sub(r"\s*\(.*\)$", "", name.strip()).lower().replace("plus", "+")
    name = re.sub(r"[^a-z0-9+]+", "", name)
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


@cache
def catalogue() -> tuple[MinerModel, ...]:
    """Every catalogued model, loaded once from the package data file."""
    text = resources.files("asicfleet.hardware").joinpath("catalogue.csv").read_text(encoding="utf-8")
    return tuple(MinerModel.model_validate(row) for row in csv.DictReader(io.StringIO(text)))


@cache
def _index() -> dict[tuple[Make, str], MinerModel]:
    index: dict[tuple[Make, str], MinerModel] = {}
    for model in catalogue():
        for name in (model.name, *model.aliases):
            index.setdefault((model.make, _key(name)), model)
    return index


KNOWN_MODELS: dict[tuple[Make, str], MinerModel] = _index()


def lookup_model(make: Make | str, name: str) -> MinerModel | None:
    """The facts of a model, or None when the string matches no catalogued name or alias (never guessed)."""
    try:
        return _index().get((Make(make), _key(name)))
    except ValueError:
        return None


class SimulableModel(BaseModel):
    """A catalogued model whose shape and nominal figures are all known, so that the simulator can serve it."""

    model_config = ConfigDict(frozen=True)

    make: Make
    name: str
    aliases: tuple[str, ...] = ()
    algo: HashAlgorithm = HashAlgorithm.SHA256
    boards: int
    chips_per_board: int
    chip: str | None = None
    fans: int
    nominal_ths: float
    nominal_watts: float
    cooling: Cooling = Cooling.AIR

    @property
    def hardware(self) -> MinerHardware:
        return MinerHardware(board_count=self.boards, chips_per_board=self.chips_per_board, fans=self.fans)

    @classmethod
    def of(cls, model: MinerModel) -> SimulableModel:
        """The model as the simulator needs it; a ValidationError names the figures the catalogue lacks."""
        return cls.model_validate(model.model_dump())
