"""The rollout ledger: the shape of rollouts in Redis, written by the orchestrator (planning, driving)
and by the workers (each miner's steps). See README, "Rollouts in Redis":

    asicfleet:rollouts                           zset   rollout id -> created
    asicfleet:rollout:{id}                       hash   control (JSON), plan settings, status, batch count
    asicfleet:rollout:{id}:batch:{n}             hash   ips (JSON), state, worker, attempts
    asicfleet:rollout:{id}:miner:{ip}            hash   state, desired (JSON), previous (JSON), detail, ...
    asicfleet:rollout:{id}:events                stream every step: {ip, step, detail}

A miner's steps: queued -> intent (previous value recorded, *before* anything is sent) -> sent ->
verified | failed | unverified; or skipped (with the reason) when it cannot take the change. A task
that finds `intent` from a run that died never sends again: it reads the miner back and records what
it finds, so a change is sent at most once even when a worker dies between sending and recording.
Where a change can sit on the miner written but not applied (Avalon pools wait for a reboot), a miner
not seen changed is `pending`, never just unverified: `rollout status` lists it, `rollout resume` sends
the change again in full (write and apply), `rollout rollback` writes the previous value back.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis

from fleet.sites import DiscoveryOptions
from fleet.store import PREFIX


class MinerStep(StrEnum):
    QUEUED = "queued"
    INTENT = "intent"
    SENT = "sent"
    VERIFIED = "verified"
    FAILED = "failed"
    UNVERIFIED = "unverified"
    PENDING = "pending"  # may be written but not applied (e.g. Avalon pools before their reboot): see `pending`
    SKIPPED = "skipped"


# a batch: pending (not sent; `due` says when it may be) -> queued -> reserved -> running -> done
BATCH_FINAL_STATES = "done pending"  # a delivery finding its batch in one of these does nothing
PER_BATCH_CONCURRENCY = 32  # miners one batch task works on at once
# a batch ends when every miner of it is in one of these; `pending` asks for `rollout resume` or `rollback`
TERMINAL = {MinerStep.VERIFIED, MinerStep.FAILED, MinerStep.UNVERIFIED, MinerStep.PENDING, MinerStep.SKIPPED}


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
