"""Rule tasks: carry out one firing's actions (on its site's queue), and check the sites between rounds.

A firing reaches its site's workers as `asicfleet.rule_action(firing_id, site)`. Delivery is at least once
(late acks, redelivery when a worker is lost), so before acting the task claims the firing with a SET NX
on `asicfleet:rules:claim:{rule}:{ip}:{window}`: a second delivery finds the claim taken and does nothing.
A worker that dies after the claim leaves the firing `running`: it is never acted on twice, and the
miner's next firing (after its cooldown) acts again. Miner logins come from the worker's own secrets
file, webhook URLs and tokens from its own rules file and environment; neither is in the task message.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import Task

from asicfleet import Miner, MinerError, MinerFactory, UnsupportedControlError
from fleet.alerts import AlertError, send_alert
from fleet.controls import BaseControl, RestartControl
from fleet.loop import run_async
from fleet.monitor import MinerState, after_collection
from fleet.resilience import retry
from fleet.rules import (
    CHECK_SITES,
    RULE_ACTION,
    ActionResult,
    Firing,
    Observation,
    RedisRuleState,
    RuleEngine,
    RulesConfig,
    WebhookAction,
    claim_key,
    configured_rules,
    dispatch,
    firing,
    parse_action,
    run_round,
    site_event_rule,
    update_firing,
)
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DiscoveryOptions
from workers.app import app
from workers.tasks import apply_credentials

CLAIM_MIN_SECONDS = 3600  # a claim outlives any redelivery of its message, whatever the cooldown


async def _read_back(control: BaseControl, miner: Miner, sent_at: float, detail: str) -> str:
    """One read-back of what was sent (a restart's shows only once the miner is back: not waited for here)."""
    if isinstance(control, RestartControl):
        return detail
    try:
        outcome = await control.verify(miner, sent_at)
    except (MinerError, UnsupportedControlError) as exc:
        return f"{detail}; not read back: {exc}"
    return f"{detail}, {outcome.state}" + (f" ({outcome.detail})" if outcome.detail else "")


async def run_actions(item: Firing, config: RulesConfig | None, settings: FleetSettings,
                      config_problem: str = "") -> list[ActionResult]:
    """Each action of `item` in order: controls through the library (identified once), webhooks by name
    (`config_problem`: why this worker has no rules file to find them in)."""
    actions = [parse_action(a) for a in item.actions]
    wants_miner = item.ip and not item.dry_run and any(a.control() is not None for a in actions)
    factory = None
    miner = None
    reach_error = "no miner answers at this address"
    if wants_miner:
        options = DiscoveryOptions.model_validate(item.options) if item.options else DiscoveryOptions()
        factory = (MinerFactory.from_targets([item.ip], allow_public=options.allow_public)
                   .with_connectivity_timeout_secs(options.connect_timeout)
                   .with_read_timeout_secs(options.read_timeout)
                   .with_identification_timeout_secs(options.identify_timeout).with_port_map(options.ports))
        apply_credentials(factory, settings.secrets_file)
        try:
            miner = await factory.get_miner(item.ip)
        except MinerError as exc:
            reach_error = f"could not identify the miner: {exc}"
    results: list[ActionResult] = []
    try:
        for action in actions:
            name = action.describe()
            control = action.control()
            if isinstance(action, WebhookAction):
                target = config.alerts.get(action.target) if config is not None else None
                if target is None:
                    results.append(ActionResult(action=name, state="failed", detail=config_problem or (
                        "no such alert target in this worker's rules file")))
                    continue
                try:
                    alert = item.model_copy(update={"results": list(results)}).alert()  # what was done so far
                    results.append(ActionResult(action=name, state="done",
                                                detail=await send_alert(action.target, target, alert)))
                except AlertError as exc:
                    results.append(ActionResult(action=name, state="failed", detail=str(exc)))
            elif control is None:
                continue
            elif item.dry_run:
                results.append(ActionResult(action=name, state="skipped", detail="dry run: not sent"))
            elif miner is None:
                results.append(ActionResult(action=name, state="failed", detail=reach_error))
            elif not getattr(miner, control.capability):
                results.append(ActionResult(action=name, state="skipped", detail=(
                    f"{miner.make} {miner.model} ({miner.firmware}) cannot do {name}")))
            else:
                try:
                    sent_at = time.time()
                    detail = await control.apply(miner) or "sent"
                    results.append(ActionResult(action=name, state="done",
                                                detail=await _read_back(control, miner, sent_at, detail)))
                except UnsupportedControlError as exc:
                    results.append(ActionResult(action=name, state="skipped", detail=str(exc)))
                except MinerError as exc:
                    results.append(ActionResult(action=name, state="failed", detail=str(exc)))
    finally:
        if factory is not None:
            await factory.aclose()
    return results


def run_firing(client: redis.Redis, settings: FleetSettings, firing_id: str, attempt: str) -> dict[str, Any]:
    """Claims firing `firing_id` for this delivery (`attempt`), acts, and records the results."""
    def redis_call(fn: Any, what: str) -> Any:
        return retry(fn, url=settings.redis_url, what=what, budget=settings.redis_retry_seconds)

    item: Firing | None = redis_call(lambda: firing(client, firing_id), "reading a firing")
    if item is None:
        return {"skipped": f"firing {firing_id} is unknown or expired"}
    if item.state != "queued":
        return {"skipped": f"firing {firing_id} is {item.state}"}
    rule = item.rule if item.kind == "rule" else site_event_rule(item.rule)
    key = claim_key(rule, item.ip or item.site, item.window)
    ttl = max(CLAIM_MIN_SECONDS, int(item.cooldown_seconds))
    if not redis_call(lambda: client.set(key, attempt, nx=True, ex=ttl), "claiming a firing"):
        return {"skipped": f"firing {firing_id} is claimed by an earlier delivery"}
    item.state = "running"
    redis_call(lambda: update_firing(client, item), "recording a firing")
    config, problem = None, ""
    try:
        config = configured_rules(settings)
    except (OSError, ValueError) as exc:  # the miner actions still go; the webhooks say why they could not
        problem = f"this worker's rules file is unusable: {str(exc)[:300]}"
    item.results = run_async(run_actions(item, config, settings, problem))
    item.state = "failed" if any(r.state == "failed" for r in item.results) else "done"
    redis_call(lambda: update_firing(client, item), "recording a firing's results")
    return {"firing": item.id, "rule": item.rule, "ip": item.ip, "state": item.state,
            "results": [r.model_dump() for r in item.results]}


def evaluate_site(client: redis.Redis, site: str, states: list[MinerState]) -> None:
    """The monitor's hook after each collection round of `site`: the rules on what it read."""
    settings = get_settings()
    run_round(client, app, settings, [Observation.of_state(s) for s in states])


after_collection.append(evaluate_site)


@app.task(bind=True, name=RULE_ACTION, acks_late=True, reject_on_worker_lost=True)
def rule_action(self: Task, firing_id: str, site: str | None = None) -> dict[str, Any]:
    """Carries out firing `firing_id`'s actions once, whatever the number of deliveries."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    try:
        return run_firing(client, settings, firing_id, self.request.id or f"attempt-{time.time()}")
    finally:
        client.close()


@app.task(name=CHECK_SITES, acks_late=True)
def rules_check_sites() -> dict[str, Any]:
    """Beat: site events that show between rounds (a site whose rounds stopped: its workers are gone)."""
    settings = get_settings()
    config = configured_rules(settings)
    if config is None or not config.site_events:
        return {"skipped": "no site events configured"}
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    try:
        fired = RuleEngine(config, RedisRuleState(client)).check_sites()
        return {"fired": dispatch(app, fired, client)}
    finally:
        client.close()
