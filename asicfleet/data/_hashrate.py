"""Hash rate with an explicit unit and algorithm, convertible between units."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HashAlgorithm(StrEnum):
    SHA256 = "SHA256"
    SCRYPT = "Scrypt"
    X11 = "X11"
    BLAKE2S256 = "Blake2S256"
    KHEAVYHASH = "KHeavyHash"
    ETHASH = "Ethash"
    EQUIHASH = "Equihash"
    EAGLESONG = "Eaglesong"
    BLAKE2B_SHA3 = "Blake2B+SHA3"
    BLAKE256R14 = "Blake256R14"
    BLAKE3 = "Blake3"
    RANDOMX = "RandomX"
    UNKNOWN = "Unknown"


class HashRateUnit(StrEnum):
    """Units of hash rate; the value of each member is its display form."""

    H = "H/s"
    KH = "KH/s"
    MH = "MH/s"
    GH = "GH/s"
    TH = "TH/s"
    PH = "PH/s"
    EH = "EH/s"

    @property
    def multiplier(self) -> float:
        """Hashes per second in one of this unit."""
        return float(1000 ** _UNIT_ORDER.index(self))

    @classmethod
    def parse(cls, text: str) -> HashRateUnit:
        """Accepts `TH/s`, `th`, `TeraHash`, `T` and the like."""
        key = text.strip().upper()
        prefix = key[:1] if key[:1] in _PREFIXES else ""
        if not key or (not prefix and not key.startswith("H")):
            raise ValueError(f"unknown hash rate unit {text!r}; expected one of {[u.value for u in cls]}")
        return _UNIT_ORDER[_PREFIXES.index(prefix) + 1 if prefix else 0]


_UNIT_ORDER = list(HashRateUnit)
_PREFIXES = "KMGTPE"


class HashRate(BaseModel):
    """A hash rate: `value` in `unit` (H/s .. EH/s) for `algo`."""

    model_config = ConfigDict(frozen=True)

    value: float = Field(description="Magnitude, in `unit`.")
    unit: HashRateUnit = Field(default=HashRateUnit.TH, description="Unit of `value`, H/s .. EH/s.")
    algo: HashAlgorithm = Field(default=HashAlgorithm.SHA256)

    @field_validator("unit", mode="before")
    @classmethod
    def _parse_unit(cls, value: Any) -> Any:
        return HashRateUnit.parse(value) if isinstance(value, str) else value

    @classmethod
    def from_hashes(cls, hashes_per_second: float, unit: HashRateUnit = HashRateUnit.TH,
                    algo: HashAlgorithm = HashAlgorithm.SHA256) -> HashRate:
        return cls(value=hashes_per_second / unit.multiplier, unit=unit, algo=algo)

    @property
    def hashes_per_second(self) -> float:
        return self.value * self.unit.multiplier

    def into_unit(self, unit: HashRateUnit | str) -> HashRate:
        """The same rate expressed in another unit."""
        target = HashRateUnit.parse(unit) if isinstance(unit, str) else unit
        return HashRate(value=self.hashes_per_second / target.multiplier, unit=target, algo=self.algo)

    def as_unit(self, unit: HashRateUnit | str) -> HashRate:
        return self.into_unit(unit)

    def __float__(self) -> float:
        return self.value

    def __add__(self, other: HashRate) -> HashRate:
        return HashRate.from_hashes(self.hashes_per_second + other.into_unit(self.unit).hashes_per_second,
                                    self.unit, self.algo)

    def __str__(self) -> str:
        return f"{self.value:.2f} {self.unit.value}"

    def __format__(self, spec: str) -> str:
        return f"{format(self.value, spec)} {self.unit.value}" if spec else str(self)
