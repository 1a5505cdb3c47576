"""Rollouts: one control sent to a target set in batches (a canary first), each change recorded,
verified by reading it back, stopped when a batch fails too often, resumable and reversible.

The driver runs here (the command line); the batches run as Celery tasks on the workers, sent by name.
The record of every step is the ledger in Redis (`fleet.ledger`).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable

import redis
from celery import Celery

from fleet.controls import parse_control
from fleet.ledger import (
    PER_BATCH_CONCURRENCY,
    TERMINAL,
    MinerStep,
    PlannedMiner,
    RolloutLedger,
    RolloutPlan,
    RolloutProgress,
    RolloutStatus,
    batch_key,
    miner_key,
    new_rollout_id,
    rollout_key,
)
from fleet.messaging import APPLY_BATCH, batch_display_name, create_app
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, site_queue
from fleet.store import worker_key


def spread_pause(total_miners: int, batch_size: int, minutes: float) -> float:
    """The pause between batches that spreads `total_miners` over `minutes` (power curtailment)."""
    batches = max(1, math.ceil(total_miners / batch_size))
    return 0.0 if batches == 1 else minutes * 60 / (batches - 1)


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
        control = parse_control(json.loads(info["control"])).describe()
        self.app.send_task(APPLY_BATCH, queue=site_queue(info["site"] or None), soft_time_limit=soft,
                           time_limit=soft + 30,
                           kwargs={"rollout_id": rollout_id, "batch": index, "ips": ips, "site": info["site"] or None},
                           shadow=batch_display_name(rollout_id, control, index, int(info["batches"]), len(ips)))

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
