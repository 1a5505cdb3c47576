"""The rollout task: apply one control to a batch of miners, recording every step before it happens."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any, cast

import redis.asyncio as aredis
from celery import Task

from asicfleet import AuthenticationError, Miner, MinerError, MinerFactory, UnsupportedControlError
from fleet.controls import BaseControl, Outcome, parse_control
from fleet.lease import CLAIM, Claim, claim_result, holder
from fleet.ledger import (
    BATCH_FINAL_STATES,
    PER_BATCH_CONCURRENCY,
    MinerStep,
    batch_key,
    miner_key,
    rollout_events_key,
    rollout_key,
)
from fleet.loop import run_async
from fleet.messaging import APPLY_BATCH
from fleet.resilience import RedisUnavailable, aretry
from fleet.rollout_flow import RolloutFlow
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DiscoveryOptions
from fleet.task_results import batch_result
from workers import metrics
from workers.app import app
from workers.leasing import LeaseKeeper
from workers.tasks import apply_credentials

_VERIFY_POLL = 1.0  # seconds between read-backs while a change settles
_PENDING_HINT = ("`asicfleet rollout resume` sends it again in full; `asicfleet rollout rollback` writes the "
                 "previous value")

# Moves a miner to a new step only from the step the caller saw, so two runs never both send. A retry of a
# move this run already made (its reply lost in a Redis outage) is recognised by the run's mark (`by`).
_ADVANCE = """
local f = redis.call('HMGET', KEYS[1], 'state', 'by')
if f[1] == ARGV[2] and f[2] == ARGV[4] then return 1 end
if f[1] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated', ARGV[3], 'by', ARGV[4])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


class MinerRun:
    """One miner's part of a batch: its ledger entry, and the steps taken on it."""

    def __init__(self, client: aredis.Redis, rollout_id: str, ip: str, verify_timeout: float,
                 settings: FleetSettings | None = None, run_mark: str = "") -> None:
        self.client = client
        self.rollout_id = rollout_id
        self.ip = ip
        self.key = miner_key(rollout_id, ip)
        self.verify_timeout = verify_timeout
        self.settings = settings or get_settings()
        self.run_mark = run_mark or f"run-{time.time()}"

    async def _retry(self, fn: Any, what: str) -> Any:
        return await aretry(fn, url=self.settings.redis_url, what=f"{what} ({self.ip})",
                            budget=self.settings.redis_retry_seconds)

    async def read(self) -> dict[str, str]:
        return cast(dict[str, str], await self._retry(lambda: self.client.hgetall(self.key), "reading the ledger"))

    async def advance(self, expected: str, step: MinerStep, **fields: Any) -> bool:
        args: list[Any] = [expected, step.value, str(time.time()), self.run_mark]
        for name, value in fields.items():
            args += [name, value if isinstance(value, str) else json.dumps(value)]
        moved = bool(await self._retry(lambda: self.client.eval(_ADVANCE, 1, self.key, *args),
                                       f"recording step {step.value}"))
        if moved:
            metrics.rollout_step(step.value)
            await self._retry(lambda: self.client.xadd(rollout_events_key(self.rollout_id), {
                "ip": self.ip, "step": step.value, "detail": str(fields.get("detail", ""))}), "recording an event")
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
    entry = await run.read()
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
            if outcome.state == "verified":
                await run.advance(MinerStep.SENT, MinerStep.VERIFIED, detail=outcome.detail)
            elif not isinstance(exc, AuthenticationError) and (pending := control.pending_reason(miner)) is not None:
                # a refused login wrote nothing; any other error may have come after some writes
                await run.advance(MinerStep.SENT, MinerStep.PENDING, detail=f"{exc}; {pending}. {_PENDING_HINT}")
            else:
                await run.advance(MinerStep.SENT, MinerStep.FAILED, detail=str(exc))
            return
        await run.advance(MinerStep.INTENT, MinerStep.SENT, sent_at=str(sent_at), result=result or "")
        state = MinerStep.SENT
    elif state == MinerStep.INTENT:
        # a run died after recording the intent: it may or may not have sent. Never send again:
        # read back, and record what the miner shows.
        outcome = await run.verify(miner, control, float(entry.get("updated") or time.time()))
        if outcome.state == "verified":
            await run.advance(MinerStep.INTENT, MinerStep.VERIFIED, detail="found applied after an interrupted run")
        elif (pending := control.pending_reason(miner)) is not None:
            await run.advance(MinerStep.INTENT, MinerStep.PENDING,
                              detail=f"interrupted after the intent was recorded; not resent: {pending}. "
                                     f"{_PENDING_HINT}")
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
                        unverified=states[MinerStep.UNVERIFIED], skipped=states[MinerStep.SKIPPED],
                        pending=states[MinerStep.PENDING])


async def apply_batch_async(settings: FleetSettings, hostname: str, rollout_id: str, batch: int,
                            ips: list[str], task_id: str = "") -> dict[str, Any]:
    client = aredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30,
                                    decode_responses=True)
    url, budget = settings.redis_url, settings.redis_retry_seconds
    key = batch_key(rollout_id, batch)
    held_by = holder(task_id or f"attempt-{time.time()}", hostname)
    lease = LeaseKeeper(client, key, held_by, hostname, settings.lease_seconds)
    try:
        info = cast(dict[str, str], await aretry(lambda: client.hgetall(rollout_key(rollout_id)), url=url,
                                                 what=f"reading rollout {rollout_id}", budget=budget))
        if not info:
            return {"skipped": "the rollout is unknown or expired"}
        claimed = claim_result(await aretry(lambda: client.eval(
            CLAIM, 1, key, held_by, hostname, settings.lease_seconds, "running", BATCH_FINAL_STATES),
            url=url, what=f"taking batch {batch}", budget=budget))
        if claimed is not Claim.OK:  # a stale or duplicate delivery: a finished batch is never touched again
            return {"skipped": f"batch {batch} is {claimed.value}"}
        await aretry(lambda: client.hset(key, "started", time.time()), url=url, what="starting a batch", budget=budget)
        current = asyncio.current_task()
        assert current is not None
        lease.start(current)
        options = DiscoveryOptions.model_validate_json(info["options"])
        factory = (MinerFactory.from_targets(ips, allow_public=options.allow_public)
                   .with_connectivity_timeout_secs(options.connect_timeout)
                   .with_read_timeout_secs(options.read_timeout)
                   .with_identification_timeout_secs(options.identify_timeout).with_port_map(options.ports))
        apply_credentials(factory, settings.secrets_file)
        limit = asyncio.Semaphore(PER_BATCH_CONCURRENCY)

        async def one(ip: str) -> None:
            async with limit:
                run = MinerRun(client, rollout_id, ip, float(info["verify_timeout"]), settings, held_by)
                try:
                    await _process(run, factory)
                except RedisUnavailable:
                    raise  # nothing can be recorded; the batch's lease runs out and it is re-queued
                except Exception as exc:  # one miner's surprise must not abandon the batch
                    entry_state = str((await run.read()).get("state") or "")
                    final = MinerStep.FAILED if entry_state == MinerStep.QUEUED else MinerStep.UNVERIFIED
                    await run.advance(entry_state, final, detail=f"{type(exc).__name__}: {exc}")

        try:
            await asyncio.gather(*(one(ip) for ip in ips))
        except asyncio.CancelledError:
            if lease.lost:
                return {"skipped": f"another attempt took batch {batch} over"}
            raise
        finally:
            await factory.aclose()
        # what Flower shows for this batch (the ledger's counts), and the flag that lets the task end the batch
        return {**await _batch_summary(client, rollout_id, batch, info, ips), "ran": True}
    finally:
        lease.stop()
        await client.aclose()


def _batch_ran(settings: FleetSettings, rollout_id: str, batch: int) -> None:
    """After a run: a batch whose miners all reached a final step ends here, and the rollout moves on (no
    command line needed); one that did not is let go, so that the reaper queues it again at once."""
    flow = RolloutFlow(settings, app)
    try:
        finished, _ = flow.batch_states(rollout_id, batch)
        if finished:
            flow.end_batch(rollout_id, batch)
        else:
            flow._retry(lambda: flow.ledger.redis.hset(batch_key(rollout_id, batch), "lease_until", 0),
                        "letting a batch go")
    finally:
        flow.close()


@app.task(bind=True, name=APPLY_BATCH, acks_late=True, reject_on_worker_lost=True)
def apply_batch(self: Task, rollout_id: str, batch: int, ips: list[str], site: str | None = None) -> dict[str, Any]:
    """Applies rollout `rollout_id`'s control to the miners of batch `batch`, step by step in the ledger."""
    settings = get_settings()
    result = run_async(apply_batch_async(settings, self.request.hostname or "unknown", rollout_id, batch, ips,
                                         task_id=self.request.id or ""))
    if result.get("ran"):
        _batch_ran(settings, rollout_id, batch)
    return result
