"""Scan and read: identify every target, then `get_data` each miner found, streaming records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address

from pydantic import BaseModel

from asicfleet._miner import Miner
from asicfleet.data import MinerData
from asicfleet.discovery._factory import MinerFactory
from asicfleet.discovery._identify import Identified


class ScanRecord(BaseModel):
    """One address's outcome: the data read, or the error that stopped it. Empty addresses yield none."""

    ip: IPv4Address
    data: MinerData | None = None
    error: str | None = None


async def _read(miner: Miner) -> ScanRecord:
    try:
        return ScanRecord(ip=miner.ip, data=await miner.get_data())
    except Exception as exc:
        return ScanRecord(ip=miner.ip, error=f"get_data failed: {type(exc).__name__}: {exc}")


async def scan_and_collect(factory: MinerFactory, *, collect_data: bool = True,
                           on_probed: Callable[[Identified], None] | None = None) -> AsyncIterator[ScanRecord]:
    """Yields a record per miner (with its data) and per misbehaving host, as they complete.

    `on_probed` is called once per target address as its identification ends (for progress).
    """
    pending: set[asyncio.Task[ScanRecord]] = set()
    limit = asyncio.Semaphore(factory.concurrent_limit)

    async def bounded(miner: Miner) -> ScanRecord:
        async with limit:
            return await _read(miner)

    async def drain(block: bool) -> AsyncIterator[ScanRecord]:
        nonlocal pending
        if not pending:
            return
        done, pending = await asyncio.wait(pending, timeout=None if block else 0,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            yield task.result()

    async for result in factory.scan_results():
        if on_probed is not None:
            on_probed(result)
        if result.miner is not None:
            if collect_data:
                pending.add(asyncio.create_task(bounded(result.miner)))
            else:
                yield ScanRecord(ip=result.miner.ip,
                                 data=MinerData(ip=result.miner.ip, device_info=result.miner.device_info))
        elif result.error is not None:
            yield ScanRecord(ip=IPv4Address(result.ip), error=result.error)
        async for record in drain(block=False):
            yield record
    while pending:
        async for record in drain(block=True):
            yield record
