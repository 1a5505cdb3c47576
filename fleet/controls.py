"""Controls as data: what a rollout changes on each miner, how to read the current value, how to
apply it, and how to verify it took.

A control spec is a pydantic model (validated before anything is sent) and travels through Redis and
the broker as JSON. Secrets never do: a new password is named by the environment variable that holds
it, and a firmware image by its path or URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from asicfleet import Miner, MinerConnectionError, UnsupportedControlError
from asicfleet.backends import DataField
from asicfleet.config import FanConfig, PoolGroup, ScalingConfig, TuningConfig
from asicfleet.data import MinerData

_TEMPLATE_FIELDS = ("mac", "ip", "hostname", "serial")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
LOG_TAIL = 64 * 1024  # characters of a miner's log kept in the ledger
_MAX_REDIRECTS = 5  # for a firmware URL, and only on its own host


@dataclass
class Outcome:
    """What a read-back says: verified, failed (with the miner's own error), or unverified."""

    state: Literal["verified", "failed", "unverified"]
    detail: str = ""


def template_values(ip: str, mac: str | None, hostname: str | None, serial: str | None) -> dict[str, str]:
    """Placeholder values made safe for a stratum worker name: `{mac}` 02aabbccddee, `{ip}` 10_0_0_5."""
    values = {"ip": ip.replace(".", "_")}
    if mac:
        values["mac"] = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if hostname:
        values["hostname"] = _UNSAFE.sub("_", hostname)
    if serial:
        values["serial"] = _UNSAFE.sub("_", serial)
    return values


async def read_fields(miner: Miner, *fields: DataField) -> MinerData:
    """Reads `fields`, raising when a read failed (a rebooting miner), so that a failed read is never
    taken for a firmware that does not report the field."""
    data = await miner.get_data(include=list(fields))
    if data.errors:
        raise MinerConnectionError("; ".join(data.errors))
    return data


class BaseControl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    capability: ClassVar[str]  # the Miner.supports_* property that must be true
    reversible: ClassVar[bool] = False  # a rollback can restore the previous value

    def placeholders(self) -> set[str]:
        return set()

    def for_miner(self, values: dict[str, str]) -> BaseControl:
        """This change as it applies to one miner (templates filled in)."""
        return self

    async def read_current(self, miner: Miner) -> Any:
        """The miner's current value of what this control changes (JSON-able), or None when unknown."""
        return None

    def describe(self) -> str:
        return self.model_dump_json(exclude={"kind"})

    def restore(self, previous: Any) -> BaseControl | None:
        """The control that puts `previous` back (for a rollback), or None when not possible."""
        return None

    def matches(self, current: Any) -> bool:
        return False

    async def apply(self, miner: Miner) -> str | None:
        """Sends the change; may return a short result to keep in the ledger."""
        raise NotImplementedError

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        """Reads the setting back; the default compares `read_current` with the wanted value."""
        current = await self.read_current(miner)
        if current is None:
            return Outcome("unverified", "the firmware does not report this setting")
        if self.matches(current):
            return Outcome("verified")
        return Outcome("failed", f"read back {current!r}")

    def check_compatible(self, make: str, model: str, firmware: str) -> str | None:
        """A reason this miner must not get this change, or None."""
        return None

    def pending_reason(self, miner: Miner) -> str | None:
        """Why this change may sit on the miner written but not applied (so that a later event, not the
        rollout, would apply it), or None when a change not seen applied did not happen."""
        return None


class PoolsControl(BaseControl):
    kind: Literal["pools"] = "pools"
    groups: list[PoolGroup] = Field(min_length=1)
    capability: ClassVar[str] = "supports_pools_config"
    reversible: ClassVar[bool] = True

    def placeholders(self) -> set[str]:
        found = {m for g in self.groups for p in g.pools for m in _PLACEHOLDER.findall(p.username)}
        unknown = found - set(_TEMPLATE_FIELDS)
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)} in pool usernames; "
                             f"known: {', '.join('{' + f + '}' for f in _TEMPLATE_FIELDS)}")
        return found

    def for_miner(self, values: dict[str, str]) -> PoolsControl:
        groups = [g.model_copy(update={"pools": [p.model_copy(update={"username": p.username.format_map(values)})
                                                 for p in g.pools]}) for g in self.groups]
        return PoolsControl(groups=groups)

    async def read_current(self, miner: Miner) -> Any:
        return [g.model_dump(mode="json") for g in await miner.get_pools_config()]

    def describe(self) -> str:
        return "; ".join(f"{p.url} {p.username}" for g in self.groups for p in g.pools)

    def matches(self, current: Any) -> bool:
        # firmwares do not return pool passwords: URLs and workers, in order, decide
        return self._configured(current)[: len(self._wanted())] == self._wanted()

    def _wanted(self) -> list[tuple[str, str]]:
        return [(p.url, p.username) for g in self.groups for p in g.pools]

    @staticmethod
    def _configured(current: Any) -> list[tuple[str, str]]:
        return [(p["url"], p["username"]) for g in current for p in g["pools"]]

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        outcome = await super().verify(miner, sent_at)
        if outcome.state == "verified":
            extra = self._configured(await self.read_current(miner))[len(self._wanted()):]
            if extra:  # some firmwares (Avalon) cannot empty a pool slot: say so rather than hide it
                outcome.detail = "the miner keeps further pools it cannot drop: " + ", ".join(u for u, _ in extra)
        return outcome

    def restore(self, previous: Any) -> PoolsControl | None:
        return PoolsControl(groups=[PoolGroup.model_validate(g) for g in previous]) if previous else None

    async def apply(self, miner: Miner) -> str | None:
        await miner.set_pools_config(list(self.groups))
        return None

    def pending_reason(self, miner: Miner) -> str | None:
        if getattr(miner.backend, "POOLS_APPLY_AT_REBOOT", False):
            return (f"{miner.make} firmware takes new pools at its next reboot: they may be written without the "
                    "reboot that applies them, and would then change at the next reboot")
        return None


class _ConfigControl(BaseControl):
    """A control that writes one config model through a `get_*_config`/`set_*_config` pair."""

    config: BaseModel
    setting: ClassVar[str]  # "fan" -> Miner.get_fan_config / set_fan_config
    reversible: ClassVar[bool] = True

    @property
    def capability(self) -> str:  # type: ignore[override]
        return f"supports_{self.setting}_config"

    async def read_current(self, miner: Miner) -> Any:
        current: BaseModel = await getattr(miner, f"get_{self.setting}_config")()
        return current.model_dump(mode="json")

    def describe(self) -> str:
        return f"{self.setting} {self.config.model_dump_json(exclude_none=True)}"

    def matches(self, current: Any) -> bool:
        return bool(type(self.config).model_validate(current) == self.config)

    def restore(self, previous: Any) -> BaseControl | None:
        return type(self)(config=type(self.config).model_validate(previous)) if previous else None

    async def apply(self, miner: Miner) -> str | None:
        await getattr(miner, f"set_{self.setting}_config")(self.config)
        return None


class FanControl(_ConfigControl):
    kind: Literal["fan"] = "fan"
    config: FanConfig
    setting: ClassVar[str] = "fan"

    def describe(self) -> str:
        return f"fan {self.config.mode}" + (f" {self.config.fan_speed} %" if self.config.fan_speed is not None else "")

    def matches(self, current: Any) -> bool:
        # firmwares report an auto mode without the target temperature they were given
        return bool(current.get("mode") == self.config.mode and (
            self.config.mode == "auto" or current.get("fan_speed") == self.config.fan_speed))


class TuningControl(_ConfigControl):
    kind: Literal["tuning"] = "tuning"
    config: TuningConfig
    setting: ClassVar[str] = "tuning"


class ScalingControl(_ConfigControl):
    kind: Literal["scaling"] = "scaling"
    config: ScalingConfig
    setting: ClassVar[str] = "scaling"


class PowerLimitControl(BaseControl):
    kind: Literal["power_limit"] = "power_limit"
    watts: float = Field(gt=0, le=100_000)
    capability: ClassVar[str] = "supports_set_power_limit"
    reversible: ClassVar[bool] = True

    async def read_current(self, miner: Miner) -> Any:
        return (await read_fields(miner, DataField.WATTAGE_LIMIT)).wattage_limit

    def describe(self) -> str:
        return f"{self.watts:g} W"

    def matches(self, current: Any, held: float | None = None) -> bool:
        wanted = self.watts if held is None else held
        return abs(float(current) - wanted) <= max(1.0, 0.01 * wanted)

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        """Compared with the limit the firmware holds for this request (a profile step on LuxOS)."""
        current = await self.read_current(miner)
        if current is None:
            return Outcome("unverified", "the firmware does not report this setting")
        held = await miner.backend.power_limit_held(self.watts)
        if not self.matches(current, held):
            return Outcome("failed", f"read back {current!r}")
        step = "" if held == self.watts else f"the firmware's step for {self.watts:g} W: {held:g} W"
        return Outcome("verified", step)

    def restore(self, previous: Any) -> PowerLimitControl | None:
        return PowerLimitControl(watts=float(previous)) if previous else None

    async def apply(self, miner: Miner) -> str | None:
        await miner.set_power_limit(self.watts)
        return None


class FaultLightControl(BaseControl):
    kind: Literal["fault_light"] = "fault_light"
    on: bool
    capability: ClassVar[str] = "supports_set_fault_light"
    reversible: ClassVar[bool] = True

    async def read_current(self, miner: Miner) -> Any:
        return (await read_fields(miner, DataField.LIGHT_FLASHING)).light_flashing

    def describe(self) -> str:
        return "fault light " + ("on" if self.on else "off")

    def matches(self, current: Any) -> bool:
        return bool(current) is self.on

    def restore(self, previous: Any) -> FaultLightControl | None:
        return FaultLightControl(on=bool(previous)) if previous is not None else None

    async def apply(self, miner: Miner) -> str | None:
        await miner.set_fault_light(self.on)
        return None


class MiningControl(BaseControl):
    """Pause (`mining: false`) or resume (`mining: true`) hashing."""

    kind: Literal["mining"] = "mining"
    mining: bool
    capability: ClassVar[str] = "supports_pause"
    reversible: ClassVar[bool] = True

    async def read_current(self, miner: Miner) -> Any:
        return (await read_fields(miner, DataField.IS_MINING)).is_mining

    def describe(self) -> str:
        return "resume mining" if self.mining else "pause mining"

    def matches(self, current: Any) -> bool:
        return bool(current) is self.mining

    def restore(self, previous: Any) -> MiningControl | None:
        return MiningControl(mining=bool(previous)) if previous is not None else None

    async def apply(self, miner: Miner) -> str | None:
        if self.mining:
            await miner.resume()
        else:
            await miner.pause()
        return None


class RestartControl(BaseControl):
    kind: Literal["restart"] = "restart"
    capability: ClassVar[str] = "supports_restart"

    async def read_current(self, miner: Miner) -> Any:
        uptime = (await read_fields(miner, DataField.UPTIME)).uptime
        return uptime.total_seconds() if uptime is not None else None

    def describe(self) -> str:
        return "restart"

    async def apply(self, miner: Miner) -> str | None:
        await miner.restart()
        return None

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        uptime = await self.read_current(miner)
        if uptime is None:
            return Outcome("unverified", "the firmware does not report its uptime")
        if uptime <= time.time() - sent_at + 5:
            return Outcome("verified")
        return Outcome("failed", f"uptime {uptime:.0f} s: the miner did not restart")


class PasswordControl(BaseControl):
    """The new password is read by the worker from the environment variable named here; it never
    travels through Redis, the broker or Flower."""

    kind: Literal["password"] = "password"
    password_env: str = Field(default="ASICFLEET_NEW_MINER_PASSWORD", pattern=r"^[A-Z_][A-Z0-9_]*$")
    capability: ClassVar[str] = "supports_change_password"

    def describe(self) -> str:
        return f"password from ${self.password_env}"

    async def apply(self, miner: Miner) -> str | None:
        password = os.environ.get(self.password_env)
        if not password:
            raise ValueError(f"${self.password_env} is not set on the worker")
        await miner.change_password(password)
        return None

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        try:  # an authenticated read with the new login (which the backend now remembers)
            await miner.get_pools_config()
        except UnsupportedControlError:
            return Outcome("unverified", "no authenticated read to check the new login with")
        return Outcome("verified")


class FactoryResetControl(BaseControl):
    kind: Literal["factory_reset"] = "factory_reset"
    capability: ClassVar[str] = "supports_factory_reset"

    def describe(self) -> str:
        return "factory reset"

    async def apply(self, miner: Miner) -> str | None:
        await miner.factory_reset()
        return None

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        return Outcome("unverified", "a factory reset has no setting to read back")


class ReadLogsControl(BaseControl):
    kind: Literal["read_logs"] = "read_logs"
    capability: ClassVar[str] = "supports_read_logs"

    def describe(self) -> str:
        return "read logs"

    async def apply(self, miner: Miner) -> str | None:
        logs = await miner.read_logs()
        return logs[-LOG_TAIL:]  # the ledger keeps the tail; the latest lines matter

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        return Outcome("verified", "logs read")


class FirmwareControl(BaseControl):
    """A firmware image (a file the workers can read, or an http(s) URL), only for the make and models
    it is built for; verified by the new version reported and the miner mining again."""

    kind: Literal["firmware"] = "firmware"
    source: str = Field(min_length=1, description="path or http(s) URL of the image")
    make: str = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    firmware: str = Field(min_length=1, description="the firmware family the image belongs to, e.g. Stock")
    version: str = Field(min_length=1, description="the version the miner reports once upgraded")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    capability: ClassVar[str] = "supports_upgrade_firmware"
    max_bytes: ClassVar[int] = 512 * 1024 * 1024

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if "://" in value and not value.startswith(("http://", "https://")):
            raise ValueError("a firmware source is a file path or an http(s) URL")
        return value

    @model_validator(mode="after")
    def _url_needs_digest(self) -> FirmwareControl:
        if self.is_url and self.sha256 is None:
            raise ValueError("a firmware image given by URL needs its sha256 (--sha256), so that the workers "
                             "install exactly the image meant")
        return self

    @property
    def is_url(self) -> bool:
        return self.source.startswith(("http://", "https://"))

    def describe(self) -> str:
        return f"firmware {self.version} from {Path(self.source).name}"

    def check_compatible(self, make: str, model: str, firmware: str) -> str | None:
        def norm(text: str) -> str:
            return re.sub(r"[\s_\-]+", "", text).lower()

        if norm(make) != norm(self.make) or norm(model) not in {norm(m) for m in self.models}:
            return f"the image is for {self.make} {', '.join(self.models)}, not {make} {model}"
        if norm(firmware) != norm(self.firmware):
            return f"the image is {self.firmware} firmware; this miner runs {firmware}"
        return None

    async def read_current(self, miner: Miner) -> Any:
        return (await read_fields(miner, DataField.FIRMWARE_VERSION)).firmware_version

    async def load(self) -> bytes:
        if self.is_url:
            image = await self._download()
        else:
            image = await asyncio.to_thread(Path(self.source).read_bytes)
        if len(image) > self.max_bytes:
            raise ValueError(f"firmware image of {len(image)} bytes is larger than {self.max_bytes}")
        if self.sha256 is not None and hashlib.sha256(image).hexdigest() != self.sha256:
            raise ValueError("the firmware image does not match its sha256")
        return image

    async def _download(self) -> bytes:
        """GETs the image, following redirects only on the same host (scheme, host and port), and never
        reading more than `max_bytes`."""
        url = httpx.URL(self.source)
        origin = (url.scheme, url.host, url.port)
        async with httpx.AsyncClient(timeout=120, follow_redirects=False) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                async with client.stream("GET", url) as reply:
                    if reply.is_redirect:
                        target = url.join(reply.headers.get("location", ""))
                        if (target.scheme, target.host, target.port) != origin:
                            raise ValueError(f"the firmware URL redirects to another host ({target.scheme}://"
                                             f"{target.host}{':' + str(target.port) if target.port else ''}); "
                                             "give the image's own URL")
                        url = target
                        continue
                    reply.raise_for_status()
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in reply.aiter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise ValueError(f"firmware image larger than {self.max_bytes} bytes")
                        chunks.append(chunk)
                    return b"".join(chunks)
        raise ValueError(f"the firmware URL redirects more than {_MAX_REDIRECTS} times")

    async def apply(self, miner: Miner) -> str | None:
        image = await self.load()
        if not miner.supports_upgrade_firmware:
            raise UnsupportedControlError(f"{miner.ip} cannot take a firmware upgrade")
        await miner.backend.upgrade_firmware(image, Path(self.source.split("?")[0]).name)
        return None

    async def verify(self, miner: Miner, sent_at: float) -> Outcome:
        data = await read_fields(miner, DataField.FIRMWARE_VERSION, DataField.IS_MINING)
        if data.firmware_version is None:
            return Outcome("unverified", "the miner does not report its firmware version")
        if self.version not in data.firmware_version:
            return Outcome("failed", f"reports firmware {data.firmware_version}")
        if data.is_mining is False:
            return Outcome("failed", f"runs {data.firmware_version} but is not mining")
        return Outcome("verified")


Control = Annotated[
    PoolsControl | FanControl | TuningControl | ScalingControl | PowerLimitControl | FaultLightControl
    | MiningControl | RestartControl | PasswordControl | FactoryResetControl | ReadLogsControl | FirmwareControl,
    Field(discriminator="kind"),
]


class ControlEnvelope(BaseModel):
    """Validates any control from JSON: `ControlEnvelope.model_validate({"control": {...}}).control`."""

    control: Control


def parse_control(value: Any) -> BaseControl:
    return ControlEnvelope.model_validate({"control": value}).control


def control_from_file_content(raw: Any) -> BaseControl:
    """A config file's content: `{"pools": [groups]}`, `{"fan": {...}}`, `{"tuning": {...}}`,
    `{"scaling": {...}}`, `{"power_limit": 3200}`, or a full control `{"kind": ..., ...}`."""
    if not isinstance(raw, dict):
        raise ValueError("a control file holds a mapping such as {pools: [...]} or {fan: {...}}")
    if "kind" in raw:
        return parse_control(raw)
    if len(raw) != 1:
        raise ValueError(f"a control file names exactly one setting; got {sorted(raw)}")
    (key, value), = raw.items()
    shapes: dict[str, Any] = {
        "pools": lambda v: {"kind": "pools", "groups": v if isinstance(v, list) and v and "pools" in v[0]
                            else [{"name": "default", "quota": 1, "pools": v}]},
        "fan": lambda v: {"kind": "fan", "config": v}, "tuning": lambda v: {"kind": "tuning", "config": v},
        "scaling": lambda v: {"kind": "scaling", "config": v},
        "power_limit": lambda v: {"kind": "power_limit", "watts": v},
    }
    if key not in shapes:
        raise ValueError(f"unknown setting {key!r}; known: {', '.join(shapes)}")
    return parse_control(shapes[key](value))


__all__ = ["BaseControl", "Control", "Outcome", "control_from_file_content", "parse_control", "template_values"]
