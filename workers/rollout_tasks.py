"""The rollout task: apply one control to a batch of miners, recording every step before it happens."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any, cast

import redis.asyncio as aredis
from celery import Task

from asicfleet import Miner, MinerError, MinerFactory, UnsupportedControlError
from fleet.controls import BaseControl, Outcome, parse_control
from fleet.ledger import (
    PER_BATCH_CONCURRENCY,
    MinerStep,
    batch_key,
    miner_key,
    rollout_events_key,
    rollout_key,
)
from fleet.loop import run_async
from fleet.messaging import APPLY_BATCH
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DiscoveryOptions
from fleet.task_results import batch_result
from workers.app import app
from workers.tasks import apply_credentials

_VERIFY_POLL = 1.0  # seconds between read-backs while a change settles

# Moves a miner to a new step only from the step the caller saw, so two runs never both send.
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


class MinerRun:
    """One miner's part of a batch: its ledger entry, and the steps taken on it."""

    def __init__(self, client: aredis.Redis, rollout_id: str, ip: str, verify_timeout: float) -> None:
        self.client = client
        self.rollout_id = rollout_id
        self.ip = ip
        self.key = miner_key(rollout_id, ip)
        self.verify_timeout = verify_timeout

    async def advance(self, expected: str, step: MinerStep, **fields: Any) -> bool:
        args: list[Any] = [expected, step.value, str(time.time())]
        for name, value in fields.items():
            args += [name, value if isinstance(value, str) else json.dumps(value)]
        moved = bool(await self.client.eval(_ADVANCE, 1, self.key, *args))
        if moved:
            await self.client.xadd(rollout_events_key(self.rollout_id),
                                   {"ip": self.ip, "step": step.value, "detail": str(fields.get("detail", ""))})
        return moved

    async def verify(self, miner: Miner, control: BaseControl, sent_at: float) -> Outcome:
        """Reads back until verified or the deadline; a miner rebooting into the change may not answer."""
        deadline = time.monotonic() + self.verify_timeout
        last = Outcome("unverified", "no read-back yet")
        while True:
            try:
                last = await control.verify(miner, sent_at)
                if last.state in ("verified", "unverified"):
                    return last
            except UnsupportedControlError as exc:
                return Outcome("unverified", str(exc))
            except MinerError as exc:
                last = Outcome("unverified", f"could not read back: {exc}")
            if time.monotonic() > deadline:
                return last
            await asyncio.sleep(_VERIFY_POLL)


async def _process(run: MinerRun, factory: MinerFactory) -> None:
    entry = cast(dict[str, str], await run.client.hgetall(run.key))
    state = entry.get("state")
    if state not in (MinerStep.QUEUED, MinerStep.INTENT, MinerStep.SENT):
        return  # done by an earlier run (or skipped): never touched again
    control = parse_control(json.loads(entry["desired"]))
    sent_at = float(entry.get("sent_at") or 0) or time.time()
    miner = await factory.get_miner(run.ip)
    if miner is None:
        if state == MinerStep.QUEUED:
            await run.advance(state, MinerStep.FAILED, detail="no miner answers at this address any more")
        else:
            await run.advance(state, MinerStep.UNVERIFIED, detail="unreachable after the change was started")
        return
    if state == MinerStep.QUEUED:
        if not getattr(miner, control.capability):
            await run.advance(state, MinerStep.SKIPPED, detail=f"{miner.make} {miner.model} ({miner.firmware}) "
                                                                 f"cannot do {control.describe()}")
            return
        incompatible = control.check_compatible(miner.make, miner.model, miner.firmware)
        if incompatible:
            await run.advance(state, MinerStep.SKIPPED, detail=incompatible)
            return
        try:
            previous = await control.read_current(miner)
        except (MinerError, UnsupportedControlError):
            previous = None
        # the intent (with the value to restore) is on record before anything is sent
        if not await run.advance(MinerStep.QUEUED, MinerStep.INTENT, previous=previous):
            return  # another run took this miner
        sent_at = time.time()
        try:
            result = await control.apply(miner)
        except UnsupportedControlError as exc:
            await run.advance(MinerStep.INTENT, MinerStep.SKIPPED, detail=str(exc))
            return
        except MinerError as exc:
            # the miner refused (its own error text) or did not answer: read back to tell which
            await run.advance(MinerStep.INTENT, MinerStep.SENT, sent_at=str(sent_at), detail=str(exc))
            outcome = await run.verify(miner, control, sent_at)
            final = MinerStep.VERIFIED if outcome.state == "verified" else MinerStep.FAILED
            await run.advance(MinerStep.SENT, final, detail=str(exc) if final is MinerStep.FAILED else outcome.detail)
            return
        await run.advance(MinerStep.INTENT, MinerStep.SENT, sent_at=str(sent_at), result=result or "")
        state = MinerStep.SENT
    elif state == MinerStep.INTENT:
        # a run died after recording the intent: it may or may not have sent. Never send again:
        # read back, and record what the miner shows.
        outcome = await run.verify(miner, control, float(entry.get("updated") or time.time()))
        if outcome.state == "verified":
            await run.advance(MinerStep.INTENT, MinerStep.VERIFIED, detail="found applied after an interrupted run")
        else:
            await run.advance(MinerStep.INTENT, MinerStep.UNVERIFIED,
                              detail=f"interrupted after the intent was recorded; not resent ({outcome.detail})")
        return
    outcome = await run.verify(miner, control, sent_at)
    step = {"verified": MinerStep.VERIFIED, "failed": MinerStep.FAILED, "unverified": MinerStep.UNVERIFIED}
    await run.advance(MinerStep.SENT, step[outcome.state], detail=outcome.detail)


async def _batch_summary(client: aredis.Redis, rollout_id: str, batch: int, info: dict[str, str],
                         ips: list[str]) -> dict[str, Any]:
    """The batch's miners as the ledger has them now (this run's and any earlier run's steps)."""
    pipe = client.pipeline(transaction=False)
    for ip in ips:
        pipe.hget(miner_key(rollout_id, ip), "state")
    states = Counter(str(state) for state in await pipe.execute())
    control = parse_control(json.loads(info["control"])).describe()
    return batch_result(rollout_id=rollout_id, batch=batch, control=control, miners=len(ips),
                        verified=states[MinerStep.VERIFIED], failed=states[MinerStep.FAILED],
                        unverified=states[MinerStep.UNVERIFIED], skipped=states[MinerStep.SKIPPED])


async def apply_batch_async(settings: FleetSettings, hostname: str, rollout_id: str, batch: int,
                            ips: list[str]) -> dict[str, Any]:
    client = aredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30,
                                    decode_responses=True)
    try:
        info = cast(dict[str, str], await client.hgetall(rollout_key(rollout_id)))
        if not info:
            return {"skipped": "the rollout is unknown or expired"}
        await client.hset(batch_key(rollout_id, batch), mapping={"state": "running", "worker": hostname,
                                                                 "started": time.time()})
        options = DiscoveryOptions.model_validate_json(info["options"])
        factory = (MinerFactory.from_targets(ips, allow_public=options.allow_public)
                   .with_connectivity_timeout_secs(options.connect_timeout)
                   .with_read_timeout_secs(options.read_timeout)
                   .with_identification_timeout_secs(options.identify_timeout).with_port_map(options.ports))
        apply_credentials(factory, settings.secrets_file)
        limit = asyncio.Semaphore(PER_BATCH_CONCURRENCY)

        async def one(ip: str) -> None:
            async with limit:
                run = MinerRun(client, rollout_id, ip, float(info["verify_timeout"]))
                try:
                    await _process(run, factory)
                except Exception as exc:  # one miner's surprise must not abandon the batch
                    entry_state = str(await client.hget(run.key, "state") or "")
                    final = MinerStep.FAILED if entry_state == MinerStep.QUEUED else MinerStep.UNVERIFIED
                    await run.advance(entry_state, final, detail=f"{type(exc).__name__}: {exc}")

        try:
            await asyncio.gather(*(one(ip) for ip in ips))
        finally:
            await factory.aclose()
        await client.hset(batch_key(rollout_id, batch), mapping={"state": "ran", "finished": time.time()})
        return await _batch_summary(client, rollout_id, batch, info, ips)
    finally:
        await client.aclose()


@app.task(bind=True, name=APPLY_BATCH, acks_late=True, reject_on_worker_lost=True)
def apply_batch(self: Task, rollout_id: str, batch: int, ips: list[str], site: str | None = None) -> dict[str, Any]:
    """Applies rollout `rollout_id`'s control to the miners of batch `batch`, step by step in the ledger."""
    return run_async(apply_batch_async(get_settings(), self.request.hostname or "unknown", rollout_id, batch, ips))
