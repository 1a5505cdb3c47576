"""Known miner models and their nominal figures.

Nominal hash rate and power are the makers' published stock figures; chip counts are per hashboard.
Backends use this table for expected hash rate and expected chips; the simulator builds its fleet from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from asicfleet.data import HashAlgorithm, MinerHardware


class Make(StrEnum):
    ANTMINER = "AntMiner"
    WHATSMINER = "WhatsMiner"
    AVALON = "AvalonMiner"
    BITAXE = "Bitaxe"


@dataclass(frozen=True)
class MinerModel:
    make: Make
    name: str
    boards: int
    chips_per_board: int
    fans: int
    nominal_ths: float
    nominal_watts: float
    algo: HashAlgorithm = HashAlgorithm.SHA256

    @property
    def hardware(self) -> MinerHardware:
        return MinerHardware(board_count=self.boards, chips_per_board=self.chips_per_board, fans=self.fans)


_TABLE: tuple[MinerModel, ...] = (
    MinerModel(Make.ANTMINER, "Antminer S9", 3, 63, 2, 13.5, 1323),
    MinerModel(Make.ANTMINER, "Antminer S17 Pro", 3, 48, 4, 53.0, 2094),
    MinerModel(Make.ANTMINER, "Antminer S19", 3, 76, 4, 95.0, 3250),
    MinerModel(Make.ANTMINER, "Antminer S19 Pro", 3, 114, 4, 110.0, 3250),
    MinerModel(Make.ANTMINER, "Antminer S19j Pro", 3, 126, 4, 104.0, 3068),
    MinerModel(Make.ANTMINER, "Antminer S19 XP", 3, 110, 4, 141.0, 3010),
    MinerModel(Make.ANTMINER, "Antminer S21", 3, 108, 4, 200.0, 3500),
    MinerModel(Make.ANTMINER, "Antminer T21", 3, 108, 4, 190.0, 3610),
    MinerModel(Make.WHATSMINER, "M30S+", 3, 156, 2, 100.0, 3400),
    MinerModel(Make.WHATSMINER, "M50S", 3, 129, 2, 126.0, 3276),
    MinerModel(Make.WHATSMINER, "M60S", 3, 128, 2, 186.0, 3441),
    MinerModel(Make.AVALON, "Avalon 1246", 3, 120, 4, 90.0, 3420),  # estats capture: 3x120 chips, Fan1-Fan4
    MinerModel(Make.AVALON, "Avalon 1366", 3, 120, 2, 130.0, 3250),
    MinerModel(Make.AVALON, "Avalon A1466", 3, 176, 2, 150.0, 3230),  # 176 chips/board as asic-rs lists
    MinerModel(Make.AVALON, "Avalon Q", 1, 160, 4, 90.0, 1674),  # home miner; estats capture: 160 chips
    MinerModel(Make.BITAXE, "BM1366", 1, 1, 1, 0.5, 12),  # Bitaxe Ultra
    MinerModel(Make.BITAXE, "BM1368", 1, 1, 1, 0.7, 15),  # Bitaxe Supra
    MinerModel(Make.BITAXE, "BM1370", 1, 1, 1, 1.2, 18),  # Bitaxe Gamma
)

KNOWN_MODELS: dict[tuple[Make, str], MinerModel] = {}


def _key(name: str) -> str:
    """Normalises a model string for look-up: case, spaces, '+' and a make prefix do not matter."""
    name = re.sub(r"\s*\(.*\)$", "", name.strip())
    return re.sub(r"[\s_\-]+", "", name).lower().removeprefix("antminer").removeprefix("avalonminer")


for _model in _TABLE:
    KNOWN_MODELS[(_model.make, _key(_model.name))] = _model


def lookup_model(make: Make | str, name: str) -> MinerModel | None:
    """The nominal facts of a model, or None when the model is not in the table."""
    return KNOWN_MODELS.get((Make(make), _key(name)))
