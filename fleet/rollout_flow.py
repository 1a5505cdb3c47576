"""Moving a rollout on, by whoever is there: the worker that ends a batch, every worker's reaper thread,
the beat task, or a command line that follows the rollout. No step needs the command line that started it.

Every move is a compare-and-set in Redis (`fleet.lease`), so two of them acting at once never send a batch
twice nor close a rollout twice:

- a batch is sent once: `pending` (with its `due` time, after the pause that follows the batch before it)
  -> `queued`, by the first caller that sees it due;
- a batch ends once: the worker whose run left every miner of it in a final step (or a reaper that finds
  them so) marks it `done`, then `next_batch` moves on by one, the failure ratio is checked, and the
  rollout is `stopped`, `done`, or the next batch is made due;
- a batch whose attempt was lost (its worker stopped beating, or its lease ran out) is queued again.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import redis
from celery import Celery

from fleet.controls import parse_control
from fleet.lease import FINISH_UNLESS_DONE, MOVE, REQUEUE, SWAP_FIELD
from fleet.ledger import (
    PER_BATCH_CONCURRENCY,
    TERMINAL,
    MinerStep,
    RolloutLedger,
    RolloutStatus,
    batch_key,
    miner_key,
    rollout_key,
)
from fleet.messaging import APPLY_BATCH, BrokerQueue, batch_display_name
from fleet.resilience import OutageClock, mask_url, retry
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, site_queue
from fleet.store import worker_key

T = TypeVar("T")


class RolloutFlow:
    """Sends, ends and re-queues a rollout's batches and closes the rollout (see the module's text)."""

    def __init__(self, settings: FleetSettings, app: Celery) -> None:
        self.settings = settings
        self.app = app
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30,
                                      decode_responses=True)
        self.ledger = RolloutLedger(client, settings.result_ttl_seconds)
        self.clock = OutageClock()
        self.broker_queue = BrokerQueue(settings.broker)

    def close(self) -> None:
        self.ledger.redis.close()

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return retry(fn, url=self.settings.redis_url, what=what, budget=self.settings.redis_retry_seconds,
                     clock=self.clock)

    # ----- sending ----------------------------------------------------------------------------
    def _publish(self, rollout_id: str, index: int, info: dict[str, str]) -> None:
        ips = json.loads(self._retry(lambda: self.ledger.batch(rollout_id, index), "reading a batch")["ips"])
        self._retry(lambda: self.ledger.redis.hincrby(batch_key(rollout_id, index), "attempts", 1),
                    "counting a batch's attempts")
        options = DiscoveryOptions.model_validate_json(info["options"])
        # each miner: identify, read, send, then read back until verified; a task runs PER_BATCH_CONCURRENCY
        # miners at once, so a batch takes that many rounds at worst
        rounds = math.ceil(len(ips) / PER_BATCH_CONCURRENCY)
        soft = rounds * (float(info["verify_timeout"]) + 4 * (options.identify_timeout + options.read_timeout)) + 120
        control = parse_control(json.loads(info["control"])).describe()
        task_id = str(uuid.uuid4())
        self._retry(lambda: self.app.send_task(
            APPLY_BATCH, task_id=task_id, queue=site_queue(info["site"] or None), soft_time_limit=soft,
            time_limit=soft + 30,
            kwargs={"rollout_id": rollout_id, "batch": index, "ips": ips, "site": info["site"] or None},
            shadow=batch_display_name(rollout_id, control, index, int(info["batches"]), len(ips))),
            f"queueing batch {index} of rollout {rollout_id} (broker {mask_url(self.settings.broker)})")
        self._retry(partial(self.ledger.redis.hset, batch_key(rollout_id, index),
                            mapping={"sent_at": time.time(), "task_id": task_id, "missing_since": 0}),
                    "recording a batch sent")

    def send_batch(self, rollout_id: str, index: int, info: dict[str, str], *, expected: str = "pending") -> bool:
        """Sends the batch if it is still in state `expected` (so only one caller sends it)."""
        moved = self._retry(lambda: self.ledger.redis.eval(
            MOVE, 1, batch_key(rollout_id, index), expected, "queued", "worker", "", "lease", "", "lease_until", "0",
            "queued_at", str(time.time()), "sent_at", "0"), f"queueing batch {index}")
        if moved:
            self._publish(rollout_id, index, info)
        return bool(moved)

    def resend(self, rollout_id: str, index: int, info: dict[str, str]) -> None:
        """Queues a batch again whatever its state (`rollout resume`): the task reconciles miners already touched."""
        self._retry(lambda: self.ledger.redis.hset(batch_key(rollout_id, index), mapping={
            "state": "queued", "worker": "", "lease": "", "lease_until": 0, "queued_at": time.time(), "sent_at": 0}),
            f"re-queueing batch {index}")
        self._publish(rollout_id, index, info)

    # ----- reading ----------------------------------------------------------------------------
    def batch_states(self, rollout_id: str, index: int) -> tuple[bool, Counter[str]]:
        """(every miner of the batch in a final step, the count of each step)."""
        def read() -> tuple[bool, Counter[str]]:
            ips = json.loads(self.ledger.batch(rollout_id, index)["ips"])
            states = Counter(m["state"] for m in self.ledger.miners(rollout_id, ips).values())
            return all(s in TERMINAL for s in states.elements()) and sum(states.values()) == len(ips), states
        return self._retry(read, f"reading batch {index} of rollout {rollout_id}")

    def judging_allowed(self) -> bool:
        """As for scans: heartbeats and leases that lapsed while nobody reached Redis get a lease's grace."""
        grace = self.settings.lease_seconds + self.settings.worker_liveness_seconds
        uptime = self._retry(lambda: float(self.ledger.redis.info("server").get("uptime_in_seconds", 1e9)),
                             "reading Redis uptime")
        return self.clock.quiet_for() > grace and uptime > grace

    # ----- moving on --------------------------------------------------------------------------
    def end_batch(self, rollout_id: str, index: int) -> bool:
        """Marks the batch done (once), then moves the rollout on. True when this caller ended it."""
        ended = self._retry(lambda: self.ledger.redis.eval(
            FINISH_UNLESS_DONE, 1, batch_key(rollout_id, index), "done", "finished", str(time.time()),
            "lease_until", "0"), f"ending batch {index}")
        self.advance(rollout_id)
        return bool(ended)

    def _swap(self, rollout_id: str, field: str, expected: str, new: str) -> bool:
        return bool(self._retry(partial(self.ledger.redis.eval, SWAP_FIELD, 1, rollout_key(rollout_id), field,
                                        expected, new), f"updating rollout {rollout_id}"))

    def advance(self, rollout_id: str) -> RolloutStatus:
        """One idempotent step from what the record says: ends a finished batch, closes the rollout, or sends
        the next batch when it is due. Returns the rollout's status."""
        info = self._retry(lambda: self.ledger.info(rollout_id), f"reading rollout {rollout_id}")
        if RolloutStatus(info["status"]) is not RolloutStatus.RUNNING:
            return RolloutStatus(info["status"])
        batches = int(info["batches"])
        index = int(info["next_batch"])
        while index < batches:
            batch = self._retry(partial(self.ledger.batch, rollout_id, index), f"reading batch {index}")
            state = batch.get("state")
            if state == "pending":
                if float(batch.get("due") or 0) <= time.time():
                    self.send_batch(rollout_id, index, info)
                return RolloutStatus.RUNNING
            finished, states = self.batch_states(rollout_id, index)
            if state != "done":
                if not finished:
                    return RolloutStatus.RUNNING
                # every miner ended but nobody marked the batch (its worker died just then)
                self._retry(partial(self.ledger.redis.eval, FINISH_UNLESS_DONE, 1, batch_key(rollout_id, index),
                                    "done", "finished", str(time.time())), f"ending batch {index}")
            if not self._swap(rollout_id, "next_batch", str(index), str(index + 1)):
                return self.status(rollout_id)  # another caller moved the rollout on meanwhile
            attempted = sum(n for step, n in states.items() if step != MinerStep.SKIPPED)
            failed = states.get(MinerStep.FAILED, 0)
            max_fail = float(info["max_fail"])
            if attempted and failed / attempted > max_fail:
                if self._swap(rollout_id, "status", RolloutStatus.RUNNING.value, RolloutStatus.STOPPED.value):
                    reason = f"batch {index}: {failed} of {attempted} failed, above the {max_fail:.0%} limit"
                    self._retry(partial(self.ledger.redis.hset, rollout_key(rollout_id), "stopped_reason", reason),
                                "recording why the rollout stopped")
                    self.skip_unsent(rollout_id, "the rollout stopped before this miner's batch")
                    self._retry(lambda: self.ledger.touch(rollout_id), "refreshing the rollout's expiry")
                return self.status(rollout_id)
            index += 1
            if index < batches:
                due = time.time() + float(info["pause_seconds"])
                self._retry(partial(self.ledger.redis.hset, batch_key(rollout_id, index), "due", due),
                            "timing the next batch")
        if self._swap(rollout_id, "status", RolloutStatus.RUNNING.value, RolloutStatus.DONE.value):
            self._retry(lambda: self.ledger.redis.hset(rollout_key(rollout_id), "finished", time.time()),
                        "closing the rollout")
            self._retry(lambda: self.ledger.touch(rollout_id), "refreshing the rollout's expiry")
        return self.status(rollout_id)

    def status(self, rollout_id: str) -> RolloutStatus:
        return RolloutStatus(self._retry(lambda: self.ledger.info(rollout_id), "reading a rollout")["status"])

    def skip_unsent(self, rollout_id: str, reason: str) -> None:
        for ip, miner in self._retry(lambda: self.ledger.miners(rollout_id), "reading the ledger").items():
            if miner["state"] == MinerStep.QUEUED:
                self._retry(partial(self.ledger.redis.eval, MOVE, 1, miner_key(rollout_id, ip), MinerStep.QUEUED.value,
                                    MinerStep.SKIPPED.value, "detail", reason), "skipping unsent miners")

    # ----- reaping ----------------------------------------------------------------------------
    def reap(self, rollout_id: str) -> list[int]:
        """Re-queues the rollout's batch whose attempt is lost, then moves the rollout on."""
        requeued: list[int] = []
        info = self._retry(lambda: self.ledger.info(rollout_id), f"reading rollout {rollout_id}")
        index = int(info["next_batch"])
        if RolloutStatus(info["status"]) is RolloutStatus.RUNNING and index < int(info["batches"]) \
                and self.judging_allowed():
            batch = self._retry(partial(self.ledger.batch, rollout_id, index), f"reading batch {index}")
            if batch.get("state") in ("reserved", "running"):
                worker = batch.get("worker") or ""
                till = float(batch.get("lease_until") or 0)
                alive = bool(worker) and bool(self._retry(lambda: self.ledger.redis.exists(worker_key(worker)),
                                                          "reading a heartbeat"))
                now = self._retry(self.ledger.redis.time, "reading Redis time")
                expired = bool(till) and till < float(now[0]) + now[1] / 1e6
                if (not alive or expired) and self._retry(partial(
                        self.ledger.redis.eval, REQUEUE, 1, batch_key(rollout_id, index), batch.get("lease", "")),
                        f"re-queueing batch {index}"):
                    self._publish(rollout_id, index, info)
                    requeued.append(index)
            elif batch.get("state") == "queued" and not float(batch.get("sent_at") or 0) \
                    and time.time() - float(batch.get("queued_at") or 0) > 2 * self.settings.lease_seconds:
                # queued, but its message never reached the broker (the sender lost it past its budget)
                self._publish(rollout_id, index, info)
                requeued.append(index)
            elif batch.get("state") == "queued" and batch.get("task_id") and self._vanished(rollout_id, index, batch,
                                                                                             info):
                self._publish(rollout_id, index, info)
                requeued.append(index)
        self.advance(rollout_id)
        return requeued

    def _vanished(self, rollout_id: str, index: int, batch: dict[str, str], info: dict[str, str]) -> bool:
        """A batch queued and sent whose message no longer waits in the broker's queue while no attempt took it
        (a worker dropped it with its broker connection, see `fleet.messaging.BrokerQueue`): True once that has
        lasted a lease period; a duplicate finds the batch held or its miners already stepped."""
        waiting = self._retry(lambda: self.broker_queue.waiting_task_ids(site_queue(info["site"] or None), 1),
                              f"reading the queue of rollout {rollout_id}")
        if waiting is None:
            return False
        key = batch_key(rollout_id, index)
        missing_since = float(batch.get("missing_since") or 0)
        if batch["task_id"] in waiting:
            if missing_since:
                self._retry(partial(self.ledger.redis.hset, key, "missing_since", 0), "clearing a mark")
            return False
        seconds, micros = self._retry(self.ledger.redis.time, "reading Redis time")
        now = float(seconds) + micros / 1e6
        if not missing_since:
            self._retry(partial(self.ledger.redis.hset, key, "missing_since", now), "marking a batch")
            return False
        return now - missing_since > self.settings.lease_seconds + self.settings.worker_liveness_seconds

    def reap_all(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for info in self._retry(lambda: self.ledger.recent(200), "listing rollouts"):
            if info.get("status") == RolloutStatus.RUNNING.value:
                out[info["id"]] = self.reap(info["id"])
        return out
