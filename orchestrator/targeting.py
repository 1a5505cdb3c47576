"""Target sets for controls: a scan's inventory filtered by make/model/firmware/site/IP, or addresses
scanned first; and planning a rollout over them (which miners change, how, and which are skipped)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from asicfleet import MinerError, MinerFactory, UnsupportedControlError
from asicfleet.backends import DataField
from asicfleet.data import MinerData
from asicfleet.discovery import scan_and_collect
from fleet.controls import BaseControl, template_values
from fleet.ledger import PlannedMiner, RolloutPlan
from fleet.sites import DiscoveryOptions

FILTER_KEYS = ("make", "model", "firmware", "site", "ip")


@dataclass(frozen=True)
class MinerFilter:
    """`make=AntMiner`, `model=S19j Pro,S21`, `firmware=Braiins OS`, `ip=10.0.0.5,10.0.0.6`: case-insensitive,
    a comma separates alternatives; several filters must all hold."""

    key: str
    values: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> MinerFilter:
        key, sep, value = text.partition("=")
        key = key.strip().lower()
        if not sep or key not in FILTER_KEYS or not value.strip():
            raise ValueError(f"filter {text!r} must be KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}")
        return cls(key, tuple(v.strip().lower() for v in value.split(",") if v.strip()))

    def accepts(self, data: MinerData, site: str | None) -> bool:
        value = {"make": data.make, "model": data.model, "firmware": data.firmware, "site": site or "",
                 "ip": str(data.ip)}[self.key].lower()
        return value in self.values


def filter_inventory(inventory: Iterable[MinerData], filters: Iterable[MinerFilter],
                     site: str | None = None) -> list[MinerData]:
    chosen = list(filters)
    return [m for m in inventory if all(f.accepts(m, site) for f in chosen)]


def _factory(ips: list[str], options: DiscoveryOptions) -> MinerFactory:
    return (MinerFactory.from_targets(ips, allow_public=options.allow_public)
            .with_concurrent_limit(options.concurrency).with_connectivity_timeout_secs(options.connect_timeout)
            .with_read_timeout_secs(options.read_timeout).with_identification_timeout_secs(options.identify_timeout)
            .with_port_map(options.ports))


async def plan_rollout(control: BaseControl, targets: list[MinerData], *, options: DiscoveryOptions,
                       batch_size: int, canary: int, pause_seconds: float, max_fail: float,
                       verify_timeout: float, site: str | None = None, read_current: bool = False,
                       factory: MinerFactory | None = None) -> RolloutPlan:
    """Checks every target before anything is sent: the miner answers, can do the control, takes this
    image, and has the values its pool worker template needs. With `read_current`, also reads each
    miner's current value (for a dry run). Only reads are sent here."""
    if batch_size < 1 or canary < 0:
        raise ValueError("the batch size must be at least 1 and the canary size at least 0")
    if not 0 <= max_fail <= 1:
        raise ValueError("the failure limit is a fraction between 0 and 1")
    needed = control.placeholders()
    ips = sorted({str(t.ip) for t in targets}, key=lambda a: tuple(int(p) for p in a.split(".")))
    known = {str(t.ip): t for t in targets}
    own_factory = factory is None
    factory = factory or _factory(ips, options)
    limit = asyncio.Semaphore(options.concurrency)

    async def one(ip: str) -> PlannedMiner:
        async with limit:
            planned = PlannedMiner(ip=ip)
            miner = await factory.get_miner(ip)
            if miner is None:
                planned.skip_reason = "no miner answers at this address"
                return planned
            planned.make, planned.model, planned.firmware = miner.make, miner.model, miner.firmware
            if not getattr(miner, control.capability):
                planned.skip_reason = f"{miner.make} {miner.model} ({miner.firmware}) cannot do this control"
                return planned
            incompatible = control.check_compatible(miner.make, miner.model, miner.firmware)
            if incompatible:
                planned.skip_reason = incompatible
                return planned
            data = known.get(ip)
            if needed - {"ip"} and (data is None or any(getattr(data, _FIELD[n]) is None for n in needed - {"ip"})):
                data = await miner.get_data(include=[DataField.MAC, DataField.HOSTNAME, DataField.SERIAL_NUMBER])
            values = template_values(ip, data.mac if data else None, data.hostname if data else None,
                                     data.serial_number if data else None)
            missing = needed - set(values)
            if missing:
                planned.skip_reason = f"the miner does not report {', '.join(sorted(missing))} for the worker name"
                return planned
            planned.desired = control.for_miner(values).model_dump(mode="json")
            if read_current:
                try:
                    planned.current = await control.read_current(miner)
                except (MinerError, UnsupportedControlError) as exc:
                    planned.current = f"unknown ({exc})"
            return planned

    try:
        miners = await asyncio.gather(*(one(ip) for ip in ips))
    finally:
        if own_factory:
            await factory.aclose()
    return RolloutPlan(control=control.model_dump(mode="json"), miners=list(miners), batch_size=batch_size,
                       canary=canary, pause_seconds=pause_seconds, max_fail=max_fail, verify_timeout=verify_timeout,
                       site=site, options=options)


_FIELD = {"mac": "mac", "hostname": "hostname", "serial": "serial_number"}


async def scan_targets(targets: list[str], options: DiscoveryOptions) -> list[MinerData]:
    """Targets given as addresses: scanned (in process) to find the miners among them."""
    factory = _factory(targets, options)
    try:
        return [r.data async for r in scan_and_collect(factory, collect_data=True) if r.data is not None]
    finally:
        await factory.aclose()
