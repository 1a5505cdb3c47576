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
from functools import partial
from typing import TypeVar

from celery import Celery

from fleet.controls import parse_control
from fleet.lease import MOVE
from fleet.ledger import (
    MinerStep,
    PlannedMiner,
    RolloutPlan,
    RolloutProgress,
    RolloutStatus,
    batch_key,
    miner_key,
    new_rollout_id,
    rollout_key,
)
from fleet.messaging import create_app
from fleet.rollout_flow import RolloutFlow
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions

T = TypeVar("T")


def spread_pause(total_miners: int, batch_size: int, minutes: float) -> float:
    """The pause between batches that spreads `total_miners` over `minutes` (power curtailment)."""
    batches = max(1, math.ceil(total_miners / batch_size))
    return 0.0 if batches == 1 else minutes * 60 / (batches - 1)


class Rollouts:
    """Plans, follows, resumes and rolls back rollouts; batches run as Celery tasks on the workers, and the
    rollout moves on by itself (`fleet.rollout_flow`): following it here only shows it and helps it along."""

    def __init__(self, settings: FleetSettings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or create_app(settings)
        self.flow = RolloutFlow(settings, self.app)
        self.ledger = self.flow.ledger

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return self.flow._retry(fn, what)

    def create(self, plan: RolloutPlan) -> str:
        rollout_id = new_rollout_id()
        self._retry(lambda: self.ledger.create(rollout_id, plan), "recording the rollout")
        return rollout_id

    def progress(self, rollout_id: str) -> RolloutProgress:
        def read() -> RolloutProgress:
            info = self.ledger.info(rollout_id)
            miners = self.ledger.miners(rollout_id)
            batches = int(info["batches"])
            done = sum(1 for n in range(batches) if self.ledger.batch(rollout_id, n).get("state") == "done")
            return RolloutProgress(rollout_id, RolloutStatus(info["status"]),
                                   Counter(m["state"] for m in miners.values()), batches, done, int(info["total"]))
        return self._retry(read, f"reading rollout {rollout_id}")

    # ----- driving ----------------------------------------------------------------------------
    def start(self, rollout_id: str) -> None:
        """Marks the rollout running and sends its next batch; from there on the workers carry it to its end."""
        self._retry(lambda: self.ledger.set_status(rollout_id, RolloutStatus.RUNNING), "starting the rollout")
        self.flow.advance(rollout_id)

    def run(self, rollout_id: str, on_progress: Callable[[RolloutProgress], None] | None = None, *,
            poll_seconds: float = 0.3, timeout: float | None = None) -> RolloutProgress:
        """Starts the rollout (its first batch) and follows it until it is no longer running. The workers move
        it on from batch to batch and close it; this only helps (re-queueing lost batches, sending due ones)."""
        info = self._retry(lambda: self.ledger.info(rollout_id), f"reading rollout {rollout_id}")
        if RolloutStatus(info["status"]) in (RolloutStatus.DONE, RolloutStatus.STOPPED):
            return self.progress(rollout_id)
        self.start(rollout_id)
        started = time.monotonic()
        last_reap = time.monotonic()
        while True:
            progress = self.progress(rollout_id)
            if on_progress is not None:
                on_progress(progress)
            if progress.status is not RolloutStatus.RUNNING:
                break
            if time.monotonic() - last_reap > 2.0:
                self.flow.reap(rollout_id)
                last_reap = time.monotonic()
            else:
                self.flow.advance(rollout_id)
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"rollout {rollout_id} still running after {timeout:g}s (the workers go on with "
                                   "it; `asicfleet rollout status` follows it)")
            time.sleep(poll_seconds)
        final = self.progress(rollout_id)
        if on_progress is not None:
            on_progress(final)
        return final

    def resume(self, rollout_id: str, on_progress: Callable[[RolloutProgress], None] | None = None, *,
               timeout: float | None = None) -> RolloutProgress:
        """Continues where the rollout stopped moving; miners already done are never sent to again."""
        self._reopen_pending(rollout_id)
        info = self._retry(lambda: self.ledger.info(rollout_id), f"reading rollout {rollout_id}")
        if RolloutStatus(info["status"]) in (RolloutStatus.DONE, RolloutStatus.STOPPED):
            return self.progress(rollout_id)
        for index in range(int(info["batches"])):  # a batch whose message or worker was lost: queue again
            batch = self._retry(partial(self.ledger.batch, rollout_id, index), f"reading batch {index}")
            if batch.get("state") in ("queued", "reserved", "running"):
                finished, _ = self.flow.batch_states(rollout_id, index)
                if not finished:
                    self.flow.resend(rollout_id, index, info)
        return self.run(rollout_id, on_progress, timeout=timeout)

    def pending(self, rollout_id: str) -> dict[str, dict[str, str]]:
        """The miners whose change may be written but not applied (`MinerStep.PENDING`)."""
        miners = self._retry(lambda: self.ledger.miners(rollout_id), f"reading rollout {rollout_id}")
        return {ip: m for ip, m in miners.items() if m["state"] == MinerStep.PENDING}

    def _reopen_pending(self, rollout_id: str) -> list[str]:
        """For `resume`: each pending miner is queued again, to get the change in full (written and applied),
        and its batch is sent again; the rollout runs again from the first such batch. Miners already in a
        final step are not touched by the re-sent batches."""
        pending = self.pending(rollout_id)
        if not pending:
            return []
        batches = sorted({int(m.get("batch", -1)) for m in pending.values()} - {-1})
        for ip in pending:
            self._retry(partial(self.ledger.redis.eval, MOVE, 1, miner_key(rollout_id, ip), MinerStep.PENDING.value,
                                MinerStep.QUEUED.value, "detail", "resumed: the change left pending is sent again "
                                "in full"), "re-queueing a pending miner")
        for index in batches:
            self._retry(partial(self.ledger.redis.hset, batch_key(rollout_id, index),
                                mapping={"state": "pending", "due": 0, "worker": "", "lease": "", "lease_until": 0}),
                        "re-opening a batch")
        self._retry(partial(self.ledger.redis.hset, rollout_key(rollout_id),
                            mapping={"next_batch": batches[0], "status": RolloutStatus.RUNNING.value}),
                    "re-opening the rollout")
        return sorted(pending)

    def rollback_plan(self, rollout_id: str) -> RolloutPlan:
        """A plan restoring each changed miner's previous value, where the control allows it."""
        info = self.ledger.info(rollout_id)
        control = parse_control(json.loads(info["control"]))
        if not control.reversible:
            raise ValueError(f"a {control.kind} rollout cannot be rolled back")  # type: ignore[attr-defined]
        planned = []
        for ip, miner in self.ledger.miners(rollout_id).items():
            if miner["state"] not in (MinerStep.VERIFIED, MinerStep.UNVERIFIED, MinerStep.SENT, MinerStep.INTENT,
                                      MinerStep.PENDING):  # pending: the previous value is written back over it
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
