"""Rollouts: one control sent to a target set in batches (a canary first), each change recorded,
verified by reading it back, stopped when a batch fails too often, resumable and reversible.

The ledger lives in Redis (see README, "Rollouts in Redis"):

    asicfleet:rollouts                           zset   rollout id -> created
    asicfleet:rollout:{id}                       hash   control (JSON), plan settings, status, batch count
    asicfleet:rollout:{id}:batch:{n}             hash   ips (JSON), state, worker, attempts
    asicfleet:rollout:{id}:miner:{ip}            hash   state, desired (JSON), previous (JSON), detail, ...
    asicfleet:rollout:{id}:events                stream every step: {ip, step, detail}

A miner's steps: queued -> intent (previous value recorded, *before* anything is sent) -> sent ->
verified | failed | unverified; or skipped (with the reason) when it cannot take the change. A task
that finds `intent` from a run that died never sends again: it reads the miner back and records what
it finds, so a change is sent at most once even when a worker dies between sending and recording.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis
from celery import Celery

from fleet.controls import parse_control
from fleet.messaging import APPLY_BATCH, create_app
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, site_queue
from fleet.store import PREFIX, worker_key


class MinerStep(StrEnum):
    QUEUED = "queued"
    INTENT = "intent"
    SENT = "sent"
    VERIFIED = "verified"
    FAILED = "failed"
    UNVERIFIED = "unverified"
    SKIPPED = "skipped"


PER_BATCH_CONCURRENCY = 32  # miners one batch task works on at once
TERMINAL = {MinerStep.VERIFIED, MinerStep.FAILED, MinerStep.UNVERIFIED, MinerStep.SKIPPED}


class RolloutStatus(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    STOPPED = "stopped"  # a batch failed too often; nothing more was sent
    DONE = "done"
    INTERRUPTED = "interrupted"  # the driver went away; `rollout resume` continues


def rollouts_key() -> str:
    return f"{PREFIX}:rollouts"


def rollout_key(rollout_id: str) -> str:
    return f"{PREFIX}:rollout:{rollout_id}"


def batch_key(rollout_id: str, batch: int) -> str:
    return f"{PREFIX}:rollout:{rollout_id}:batch:{batch}"


def miner_key(rollout_id: str, ip: str) -> str:
    return f"{PREFIX}:rollout:{rollout_id}:miner:{ip}"


def rollout_events_key(rollout_id: str) -> str:
    return f"{PREFIX}:rollout:{rollout_id}:events"


@dataclass
class PlannedMiner:
    """One target of a rollout as planned: its change (templated), or why it is skipped."""

    ip: str
    make: str = ""
    model: str = ""
    firmware: str = ""
    desired: dict[str, Any] | None = None
    current: Any = None
    skip_reason: str | None = None


@dataclass
class RolloutPlan:
    control: dict[str, Any]
    miners: list[PlannedMiner]
    batch_size: int
    canary: int
    pause_seconds: float
    max_fail: float  # fraction of a batch's attempted miners that may fail before the rollout stops
    verify_timeout: float
    site: str | None = None
    options: DiscoveryOptions = field(default_factory=DiscoveryOptions)
    parent: str | None = None  # the rollout this one rolls back

    def batches(self) -> list[list[str]]:
        """The canary batch first, then batches of `batch_size`; skipped miners are in no batch."""
        ips = [m.ip for m in self.miners if m.skip_reason is None]
        first = ips[: self.canary] if self.canary else []
        rest = ips[len(first):]
        return ([first] if first else []) + [rest[i:i + self.batch_size] for i in range(0, len(rest), self.batch_size)]


@dataclass
class RolloutProgress:
    rollout_id: str
    status: RolloutStatus
    counts: Counter[str]
    batches_total: int
    batches_done: int
    total: int

    @property
    def finished(self) -> int:
        return sum(n for step, n in self.counts.items() if step in TERMINAL)


def new_rollout_id() -> str:
    return "r" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def spread_pause(total_miners: int, batch_size: int, minutes: float) -> float:
    """The pause between batches that spreads `total_miners` over `minutes` (power curtailment)."""
    batches = max(1, math.ceil(total_miners / batch_size))
    return 0.0 if batches == 1 else minutes * 60 / (batches - 1)


class RolloutLedger:
    """The rollout's record in Redis (synchronous side: planning, driving, reading)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.redis = client
        self.ttl = ttl_seconds

    def create(self, rollout_id: str, plan: RolloutPlan) -> None:
        batches = plan.batches()
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(rollout_key(rollout_id), mapping={
            "id": rollout_id, "created": now, "control": json.dumps(plan.control), "status": RolloutStatus.PLANNED,
            "batch_size": plan.batch_size, "canary": plan.canary, "pause_seconds": plan.pause_seconds,
            "max_fail": plan.max_fail, "verify_timeout": plan.verify_timeout, "site": plan.site or "",
            "options": plan.options.model_dump_json(), "total": len(plan.miners), "batches": len(batches),
            "parent": plan.parent or "", "next_batch": 0})
        for index, ips in enumerate(batches):
            pipe.hset(batch_key(rollout_id, index), mapping={"ips": json.dumps(ips), "state": "pending",
                                                             "attempts": 0})
        batch_of = {ip: index for index, ips in enumerate(batches) for ip in ips}
        for miner in plan.miners:
            step = MinerStep.SKIPPED if miner.skip_reason else MinerStep.QUEUED
            pipe.hset(miner_key(rollout_id, miner.ip), mapping={
                "ip": miner.ip, "state": step, "make": miner.make, "model": miner.model, "firmware": miner.firmware,
                "desired": json.dumps(miner.desired), "detail": miner.skip_reason or "",
                "batch": batch_of.get(miner.ip, -1), "updated": now})
            pipe.xadd(rollout_events_key(rollout_id), {"ip": miner.ip, "step": step, "detail": miner.skip_reason or ""})
        pipe.zadd(rollouts_key(), {rollout_id: now})
        pipe.execute()
        self.touch(rollout_id, plan_miners=[m.ip for m in plan.miners], batches=len(batches))

    def touch(self, rollout_id: str, plan_miners: Iterable[str] | None = None, batches: int | None = None) -> None:
        """Refreshes the expiry of every key of the rollout."""
        info = self.info(rollout_id)
        ips = list(plan_miners) if plan_miners is not None else self.miner_ips(rollout_id)
        count = batches if batches is not None else int(info.get("batches", 0))
        pipe = self.redis.pipeline(transaction=False)
        for key in [rollout_key(rollout_id), rollout_events_key(rollout_id),
                    *(batch_key(rollout_id, n) for n in range(count)), *(miner_key(rollout_id, ip) for ip in ips)]:
            pipe.expire(key, self.ttl)
        pipe.execute()

    def info(self, rollout_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(rollout_key(rollout_id))
        if not raw:
            raise KeyError(f"no rollout {rollout_id!r} in Redis (never planned, or expired)")
        return dict(raw)  # type: ignore[arg-type]

    def set_status(self, rollout_id: str, status: RolloutStatus, **extra: str) -> None:
        fields: dict[str | bytes, str] = {"status": status.value}
        fields.update(extra)
        self.redis.hset(rollout_key(rollout_id), mapping=fields)  # type: ignore[arg-type]

    def batch(self, rollout_id: str, index: int) -> dict[str, str]:
        return dict(self.redis.hgetall(batch_key(rollout_id, index)))  # type: ignore[arg-type]

    def miner_ips(self, rollout_id: str) -> list[str]:
        prefix = miner_key(rollout_id, "")
        return sorted(str(k)[len(prefix):] for k in self.redis.scan_iter(match=prefix + "*", count=1000))

    def miners(self, rollout_id: str, ips: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
        wanted = list(ips) if ips is not None else self.miner_ips(rollout_id)
        pipe = self.redis.pipeline(transaction=False)
        for ip in wanted:
            pipe.hgetall(miner_key(rollout_id, ip))
        return {ip: dict(raw) for ip, raw in zip(wanted, pipe.execute(), strict=True) if raw}

    def recent(self, limit: int = 20) -> list[dict[str, str]]:
        out = []
        for rollout_id in self.redis.zrevrange(rollouts_key(), 0, limit - 1):
            try:
                out.append(self.info(str(rollout_id)))
            except KeyError:
                self.redis.zrem(rollouts_key(), str(rollout_id))
        return out


class Rollouts:
    """Plans, runs, resumes and rolls back rollouts; batches run as Celery tasks on the workers."""

    def __init__(self, settings: FleetSettings, app: Celery | None = None) -> None:
        self.settings = settings
        self.ledger = RolloutLedger(redis.Redis.from_url(settings.redis_url, socket_timeout=30, decode_responses=True),
                                    settings.result_ttl_seconds)
        self.app = app or create_app(settings)

    def create(self, plan: RolloutPlan) -> str:
        rollout_id = new_rollout_id()
        self.ledger.create(rollout_id, plan)
        return rollout_id

    def progress(self, rollout_id: str) -> RolloutProgress:
        info = self.ledger.info(rollout_id)
        miners = self.ledger.miners(rollout_id)
        batches = int(info["batches"])
        done = sum(1 for n in range(batches) if self.ledger.batch(rollout_id, n).get("state") == "done")
        return RolloutProgress(rollout_id, RolloutStatus(info["status"]),
                               Counter(m["state"] for m in miners.values()), batches, done, int(info["total"]))

    # ----- driving ----------------------------------------------------------------------------
    def _send_batch(self, rollout_id: str, index: int, info: dict[str, str]) -> None:
        ips = json.loads(self.ledger.batch(rollout_id, index)["ips"])
        self.ledger.redis.hset(batch_key(rollout_id, index), mapping={"state": "queued", "worker": ""})
        self.ledger.redis.hincrby(batch_key(rollout_id, index), "attempts", 1)
        options = DiscoveryOptions.model_validate_json(info["options"])
        # each miner: identify, read, send, then read back until verified; a task runs PER_BATCH_CONCURRENCY
        # miners at once, so a batch takes that many rounds at worst
        rounds = math.ceil(len(ips) / PER_BATCH_CONCURRENCY)
        soft = rounds * (float(info["verify_timeout"]) + 4 * (options.identify_timeout + options.read_timeout)) + 120
        self.app.send_task(APPLY_BATCH, queue=site_queue(info["site"] or None), soft_time_limit=soft,
                           time_limit=soft + 30,
                           kwargs={"rollout_id": rollout_id, "batch": index, "ips": ips, "site": info["site"] or None})

    def _batch_finished(self, rollout_id: str, index: int) -> tuple[bool, Counter[str]]:
        ips = json.loads(self.ledger.batch(rollout_id, index)["ips"])
        states = Counter(m["state"] for m in self.ledger.miners(rollout_id, ips).values())
        return all(s in TERMINAL for s in states.elements()) and sum(states.values()) == len(ips), states

    def _reap_batch(self, rollout_id: str, index: int, info: dict[str, str]) -> bool:
        """Re-queues a batch whose worker stopped beating; the task reconciles miners already touched."""
        batch = self.ledger.batch(rollout_id, index)
        worker = batch.get("worker")
        if batch.get("state") in ("reserved", "running") and worker and not self.ledger.redis.exists(
                worker_key(worker)):
            self._send_batch(rollout_id, index, info)
            return True
        return False

    def run(self, rollout_id: str, on_progress: Callable[[RolloutProgress], None] | None = None, *,
            poll_seconds: float = 0.3, timeout: float | None = None) -> RolloutProgress:
        """Sends the batches in order, waiting for each to finish and checking its failure ratio."""
        info = self.ledger.info(rollout_id)
        if RolloutStatus(info["status"]) in (RolloutStatus.DONE, RolloutStatus.STOPPED):
            return self.progress(rollout_id)
        self.ledger.set_status(rollout_id, RolloutStatus.RUNNING)
        started = time.monotonic()
        batches = int(info["batches"])
        max_fail = float(info["max_fail"])
        for index in range(int(info["next_batch"]), batches):
            if self.ledger.batch(rollout_id, index).get("state") != "done":
                if self.ledger.batch(rollout_id, index).get("state") in (None, "pending"):
                    self._send_batch(rollout_id, index, info)
                last_reap = time.monotonic()
                while True:
                    finished, states = self._batch_finished(rollout_id, index)
                    if on_progress is not None:
                        on_progress(self.progress(rollout_id))
                    if finished:
                        break
                    if time.monotonic() - last_reap > 2.0:
                        self._reap_batch(rollout_id, index, info)
                        last_reap = time.monotonic()
                    if timeout is not None and time.monotonic() - started > timeout:
                        self.ledger.set_status(rollout_id, RolloutStatus.INTERRUPTED)
                        raise TimeoutError(f"rollout {rollout_id}: batch {index} not finished after {timeout:g}s")
                    time.sleep(poll_seconds)
                self.ledger.redis.hset(batch_key(rollout_id, index), "state", "done")
            else:
                _, states = self._batch_finished(rollout_id, index)
            self.ledger.redis.hset(rollout_key(rollout_id), "next_batch", index + 1)
            attempted = sum(n for step, n in states.items() if step != MinerStep.SKIPPED)
            failed = states.get(MinerStep.FAILED, 0)
            if attempted and failed / attempted > max_fail:
                self.ledger.set_status(rollout_id, RolloutStatus.STOPPED, stopped_reason=(
                    f"batch {index}: {failed} of {attempted} failed, above the {max_fail:.0%} limit"))
                self._skip_unsent(rollout_id, "the rollout stopped before this miner's batch")
                break
            if index + 1 < batches and float(info["pause_seconds"]) > 0:
                time.sleep(float(info["pause_seconds"]))
        else:
            self.ledger.set_status(rollout_id, RolloutStatus.DONE)
        self.ledger.touch(rollout_id)
        final = self.progress(rollout_id)
        if on_progress is not None:
            on_progress(final)
        return final

    def _skip_unsent(self, rollout_id: str, reason: str) -> None:
        for ip, miner in self.ledger.miners(rollout_id).items():
            if miner["state"] == MinerStep.QUEUED:
                self.ledger.redis.hset(miner_key(rollout_id, ip), mapping={"state": MinerStep.SKIPPED,
                                                                           "detail": reason})

    def resume(self, rollout_id: str, on_progress: Callable[[RolloutProgress], None] | None = None, *,
               timeout: float | None = None) -> RolloutProgress:
        """Continues where the rollout stopped being driven; miners already done are never sent to again."""
        info = self.ledger.info(rollout_id)
        if RolloutStatus(info["status"]) in (RolloutStatus.DONE, RolloutStatus.STOPPED):
            return self.progress(rollout_id)
        for index in range(int(info["batches"])):  # a batch queued by the driver that died: queue again
            batch = self.ledger.batch(rollout_id, index)
            if batch.get("state") in ("queued", "reserved", "running"):
                finished, _ = self._batch_finished(rollout_id, index)
                if not finished:
                    self._send_batch(rollout_id, index, info)
        return self.run(rollout_id, on_progress, timeout=timeout)

    def rollback_plan(self, rollout_id: str) -> RolloutPlan:
        """A plan restoring each changed miner's previous value, where the control allows it."""
        info = self.ledger.info(rollout_id)
        control = parse_control(json.loads(info["control"]))
        if not control.reversible:
            raise ValueError(f"a {control.kind} rollout cannot be rolled back")  # type: ignore[attr-defined]
        planned = []
        for ip, miner in self.ledger.miners(rollout_id).items():
            if miner["state"] not in (MinerStep.VERIFIED, MinerStep.UNVERIFIED, MinerStep.SENT, MinerStep.INTENT):
                continue
            previous = json.loads(miner.get("previous") or "null")
            restore = control.restore(previous)
            entry = PlannedMiner(ip=ip, make=miner["make"], model=miner["model"], firmware=miner["firmware"])
            if restore is None:
                entry.skip_reason = "no previous value was recorded"
            else:
                entry.desired = restore.model_dump(mode="json")
            planned.append(entry)
        if not planned:
            raise ValueError(f"rollout {rollout_id} changed no miner: nothing to roll back")
        return RolloutPlan(control=json.loads(info["control"]), miners=planned,
                           batch_size=int(info["batch_size"]), canary=0, pause_seconds=0.0,
                           max_fail=1.0, verify_timeout=float(info["verify_timeout"]), site=info["site"] or None,
                           options=DiscoveryOptions.model_validate_json(info["options"]), parent=rollout_id)
