"""The dashboard's actions: each one is a rollout of one miner, planned and run exactly as `asicfleet restart` or
`asicfleet fault-light` do it (checked against the miner first, recorded in the ledger before anything is sent,
carried out and verified by the site's workers). The page follows it in the miner's rollouts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from asicfleet.data import MinerData
from fleet.controls import BaseControl, FaultLightControl, MiningControl, PowerLimitControl, RestartControl
from fleet.settings import FleetSettings
from orchestrator.dashboard.sources import MinerDetail
from orchestrator.rollouts import Rollouts
from orchestrator.targeting import plan_rollout


@dataclass(frozen=True)
class Action:
    """One button of the miner page; an action with a `parameter` applies a setting, the value given with it
    (validated by the control's model, so a bad value is refused before anything is planned)."""

    name: str
    label: str
    make: Callable[[dict[str, Any]], BaseControl]
    verify_timeout: float
    parameter: str | None = None  # the name of the value it applies, e.g. "watts"
    unit: str = ""


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("restart", "Restart", lambda _: RestartControl(), 120.0),
    Action("light-on", "Fault light on", lambda _: FaultLightControl(on=True), 60.0),
    Action("light-off", "Fault light off", lambda _: FaultLightControl(on=False), 60.0),
    Action("pause", "Pause mining", lambda _: MiningControl(mining=False), 60.0),
    Action("resume", "Resume mining", lambda _: MiningControl(mining=True), 60.0),
    Action("power-limit", "Apply power limit", lambda values: PowerLimitControl(watts=values.get("watts")), 120.0,
           parameter="watts", unit="W"),
)}


@dataclass
class ActionOutcome:
    ok: bool
    action: str
    ip: str
    rollout_id: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class ActionRunner:
    """Starts actions as one-miner rollouts on the fleet's workers (sent by task name, never imported)."""

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self._rollouts: Rollouts | None = None

    @property
    def rollouts(self) -> Rollouts:
        if self._rollouts is None:  # the Celery app is made on the first action, not at start
            self._rollouts = Rollouts(self.settings)
        return self._rollouts

    async def run(self, action: Action, detail: MinerDetail, values: dict[str, Any] | None = None) -> ActionOutcome:
        """Plans and queues the action; a value the control refuses raises pydantic's ValidationError."""
        ip = detail.row.ip
        data = MinerData.model_validate(detail.data)
        plan = await plan_rollout(action.make(values or {}), [data], options=detail.options, batch_size=1, canary=0,
                                  pause_seconds=0.0, max_fail=1.0, verify_timeout=action.verify_timeout,
                                  site=detail.site)
        planned = plan.miners[0]
        if planned.skip_reason is not None:
            return ActionOutcome(False, action.name, ip, detail=f"not sent: {planned.skip_reason}")
        rollouts = self.rollouts
        rollout_id = await run_in_threadpool(rollouts.create, plan)
        await run_in_threadpool(rollouts.start, rollout_id)
        return ActionOutcome(True, action.name, ip, rollout_id,
                             f"{action.label}: rollout {rollout_id} queued to the "
                             f"{'site ' + detail.site if detail.site else 'default'} workers")
