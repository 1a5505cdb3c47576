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
from asicfleet.discovery._pace import AdaptiveLimit


class ScanRecord(BaseModel):
    """One address's outcome: the data read, or the error that stopped it. Empty addresses yield none."""

    ip: IPv4Address
    data: MinerData | None = None
    error: str | None = None
    undecided: bool = False  # our own overload spoiled every attempt (see ScanSummary.undecided)


_READ_ATTEMPTS = 3


async def _read(miner: Miner, pace: AdaptiveLimit, read_timeout: float) -> ScanRecord:
    """Reads one miner; a read that came back incomplete while our loop stalled is read again (our
    overload is not the miner's fault), so the data reported is what the miner says."""
    for attempt in range(_READ_ATTEMPTS):
        await pace.acquire()
        stalled_before = pace.monitor.stalled()
        try:
            data = await miner.get_data()
        except Exception as exc:
            data, failure = None, exc
        finally:
            pace.release()
        spoiled = pace.monitor.stalled() - stalled_before > 0.1 * read_timeout
        if not spoiled or attempt == _READ_ATTEMPTS - 1:
            break
        if data is not None and not data.errors:
            break
        await asyncio.sleep(0.2 * (attempt + 1))
    if data is None:
        return ScanRecord(ip=miner.ip, error=f"get_data failed: {type(failure).__name__}: {failure}")
    return ScanRecord(ip=miner.ip, data=data)


async def scan_and_collect(factory: MinerFactory, *, collect_data: bool = True,
                           on_probed: Callable[[Identified], None] | None = None) -> AsyncIterator[ScanRecord]:
    """Yields a record per miner (with its data) and per misbehaving host, as they complete.

    Probes and reads share one in-flight budget that follows the loop's lag (see `AdaptiveLimit`).
    `on_probed` is called once per target address as its identification ends (for progress).
    """
    pending: set[asyncio.Task[ScanRecord]] = set()
    pace = AdaptiveLimit(factory.concurrent_limit)
    read_timeout = factory.settings.read_timeout

    async def drain(block: bool) -> AsyncIterator[ScanRecord]:
        nonlocal pending
        if not pending:
            return
        done, pending = await asyncio.wait(pending, timeout=None if block else 0,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            yield task.result()

    try:
        async for result in factory.scan_results(limit=pace):
            if on_probed is not None:
                on_probed(result)
            if result.miner is not None:
                if collect_data:
                    pending.add(asyncio.create_task(_read(result.miner, pace, read_timeout)))
                else:
                    yield ScanRecord(ip=result.miner.ip,
                                     data=MinerData(ip=result.miner.ip, device_info=result.miner.device_info))
            elif result.error is not None:
                yield ScanRecord(ip=IPv4Address(result.ip), error=result.error, undecided=result.undecided)
            if pending:
                async for record in drain(block=False):
                    yield record
        while pending:
            async for record in drain(block=True):
                yield record
    finally:
        for task in pending:
            task.cancel()
        pace.close()
