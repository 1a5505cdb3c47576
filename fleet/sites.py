"""Sites: named parts of a farm, each with its ranges, its worker queue and its scan schedule.

One validated file (YAML or JSON) describes them all, e.g.

    sites:
      east:
        ranges: ["10.1.0.0/16"]
        exclude: ["10.1.0.1"]
        chunk_prefix: 24               # default auto: the largest chunks (/16 to /24) giving each live worker 16
        every_minutes: 30
        collect_every_minutes: 1       # read the known miners every minute (default 5; null: never)
        discovery: {concurrency: 1000, connect_timeout: 1.0}
      west:
        ranges: ["10.2.0.0/20"]
        cron: "0 * * * *"
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from asicfleet import InvalidTargetError
from asicfleet.transport import PortMap
from fleet.plan import DISTRIBUTED_MAX_ADDRESSES, check_no_overlap, plan_chunks

_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_QUEUE = "asicfleet.default"
# top-level keys of a sites file that belong to the rules (validated by fleet.rules, not here)
RULES_SECTIONS = ("rules", "alerts", "site_events", "max_actions_per_site_per_hour", "dry_run")


def site_queue(site: str | None) -> str:
    """Each site's workers consume only that site's queue; scans without a site use the default one."""
    return f"asicfleet.site.{site}" if site else DEFAULT_QUEUE


def check_site_name(name: str) -> str:
    if not _SITE_NAME.match(name):
        raise ValueError(f"site name {name!r} must be lower-case letters, digits, '-' or '_' (max 63)")
    return name


class DiscoveryOptions(BaseModel):
    """How a chunk is scanned; travels with each task (no secrets in here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int = Field(default=1000, ge=1, le=20000)
    connect_timeout: float = Field(default=1.0, gt=0, le=60)
    read_timeout: float = Field(default=5.0, gt=0, le=300)
    identify_timeout: float = Field(default=10.0, gt=0, le=600)
    ports: str = Field(default="", description="port map such as 80=10080,443=10443")
    allow_public: bool = False
    max_addresses: int | None = Field(default=None, ge=1, description="refuse a larger scan (default a /12)")

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        return str(PortMap.parse(value))

    def chunk_time_limits(self, addresses: int) -> tuple[float, float]:
        """(soft, hard) seconds for one chunk: rounds of identification plus reading, with margin."""
        # in flight can sink to a few hundred when the machine is loaded, and undecided addresses get
        # up to three gentler rounds (asicfleet.discovery): budget for both
        rounds = -(-addresses // min(self.concurrency, 256)) + 3
        soft = rounds * (self.identify_timeout + 4 * self.read_timeout + self.connect_timeout) + 60
        return soft, soft + 30


class SiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ranges: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    chunk_prefix: int | Literal["auto"] = Field(
        default="auto", description="chunk prefix length (8-32), or auto: chosen when each scan starts (fleet.scans)")
    every_minutes: float | None = Field(default=None, gt=0)
    cron: str | None = Field(default=None, description="five fields: minute hour day-of-month month day-of-week")
    discovery: DiscoveryOptions = Field(default_factory=DiscoveryOptions)
    collect_every_minutes: float | None = Field(
        default=5.0, ge=1, description="how often the known miners are read (fleet.monitor); null: never")
    collect_batch_size: int = Field(default=500, ge=1, le=20000, description="miners per collection task")

    @field_validator("chunk_prefix")
    @classmethod
    def _chunk_prefix(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 8 <= value <= 32:
            raise ValueError(f"chunk_prefix {value} must be from 8 to 32, or auto")
        return value

    @property
    def prefix(self) -> int | None:
        """The chunk prefix for `Scans.start_scan`: None for auto."""
        return None if self.chunk_prefix == "auto" else int(self.chunk_prefix)

    @model_validator(mode="after")
    def _valid(self) -> SiteConfig:
        if self.every_minutes is not None and self.cron is not None:
            raise ValueError("give a site either every_minutes or cron, not both")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} must have five fields")
        try:
            plan_chunks(self.ranges, exclude=self.exclude, prefix=self.prefix or 24,
                        allow_public=self.discovery.allow_public,
                        max_addresses=self.discovery.max_addresses or DISTRIBUTED_MAX_ADDRESSES)
        except InvalidTargetError as exc:
            raise ValueError(str(exc)) from None
        return self


class SitesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sites: dict[str, SiteConfig] = Field(min_length=1)

    @field_validator("sites")
    @classmethod
    def _names(cls, sites: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        for name in sites:
            check_site_name(name)
        return sites

    @model_validator(mode="after")
    def _no_shared_addresses(self) -> SitesConfig:
        try:
            check_no_overlap([r for site in self.sites.values() for r in site.ranges])
        except InvalidTargetError as exc:
            raise ValueError(f"two sites share addresses: {exc}") from None
        return self


def read_config_file(path: str | Path, what: str) -> Any:
    """The parsed content of a YAML or JSON file (JSON by its `.json` suffix); ValueError naming the file and
    `what` it is (e.g. "sites file") when it cannot be read or parsed."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{what} {path} is not valid YAML/JSON: {exc}") from None


def load_sites(path: str | Path) -> SitesConfig:
    """Reads and validates a sites file (YAML or JSON); raises ValueError with the reason."""
    raw = read_config_file(path, "sites file")
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k not in RULES_SECTIONS}
    return SitesConfig.model_validate(raw)
