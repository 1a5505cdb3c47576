"""One round of reaping, run by every worker's reaper thread (one at a time, by a lock in Redis) and by the
beat task: chunks and batches whose attempt is lost are re-queued, finished scans and rollouts closed,
due rollout batches sent. Nothing here needs the command line that started the work."""

from __future__ import annotations

from typing import Any

from celery import Celery

from fleet.rollout_flow import RolloutFlow
from fleet.scans import Scans
from fleet.settings import FleetSettings


class Reaper:
    """Kept for the life of a worker (or a beat run): one Redis connection, and the memory of outages."""

    def __init__(self, settings: FleetSettings, app: Celery) -> None:
        self.scans = Scans(settings, app)
        self.rollouts = RolloutFlow(settings, app)

    def outage(self) -> None:
        self.scans.clock.failed()
        self.rollouts.clock.failed()

    def reap(self) -> dict[str, Any]:
        return {"scans": self.scans.reap_all(), "rollouts": self.rollouts.reap_all()}
