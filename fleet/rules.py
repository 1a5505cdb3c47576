"""Rules that act: conditions on what collection reads, held for a duration, scoped to part of the fleet,
with actions (restart, fault light, pause, power limit, webhook), a per-miner cooldown, a cap on actions
per site per hour and a dry-run mode; every firing recorded in a ledger.

A rules file (its own YAML/JSON, or a `rules:` section of the sites file) is validated before anything runs:

    max_actions_per_site_per_hour: 20
    dry_run: false                       # true: every rule only records what it would do
    alerts:
      ops: {kind: slack, url_env: SLACK_WEBHOOK_URL}
    rules:
      - name: low-hashrate-restart
        when: {kind: hashrate_below, percent: 70}
        for_minutes: 15
        scope: {sites: [east], makes: [AntMiner], ips: ["10.1.0.0/16"]}
        actions: [{kind: restart}, {kind: webhook, target: ops}]
        cooldown_minutes: 120
    site_events:
      - {name: east-down, kind: site_hashrate_below, percent: 80, for_minutes: 10, notify: [ops]}
      - {name: east-workers, kind: workers_gone, minutes: 15, notify: [ops]}

One round: after each collection round the engine sees one `Observation` per known miner (the latest
MinerData, online or not, last seen), evaluates every rule in scope, and for each rule and miner either
starts or keeps the time the condition has held since, or forgets it. A condition that cannot be judged
(no data, the field not reported) forgets it too: a rule acts only on evidence that held all along. When
it has held `for_minutes` (offline: since the miner was last seen), the rule fires: the cooldown is
claimed (SET NX, so two evaluations never both fire), the site's hourly budget is taken, and the firing
is recorded, then sent to the site's workers (`asicfleet.rule_action`), which claim it once more before
acting, so a redelivered task never acts twice.

Redis keys (all under `asicfleet:rules:`):

    asicfleet:rules:held:{rule}                  hash   ip -> unix time the condition has held since
    asicfleet:rules:cooldown:{rule}:{ip}         string firing id; expires when the miner's cooldown ends
    asicfleet:rules:budget:{site}:{hour}         string actions taken in that clock hour (expires after 2 h)
    asicfleet:rules:claim:{rule}:{ip}:{window}   string the delivery that acts on that firing (SET NX);
                                                 window = the firing's unix second; expires with the cooldown
    asicfleet:rules:firing:{id}                  hash   one firing: rule, ip, site, make, model, condition,
                                                 values (JSON), actions (JSON), state, results (JSON), ...
    asicfleet:rules:firings                      zset   firing id -> fired at (every firing)
    asicfleet:rules:firings:site:{site}          zset   the same, per site
    asicfleet:rules:firings:ip:{ip}              zset   the same, per miner
    asicfleet:rules:site:{site}                  hash   the last round's totals: last_round, online,
                                                 offline, hashrate_ths, expected_ths
    asicfleet:rules:sites                        set    sites seen by a round (for workers_gone)

Site events use the same held and cooldown keys with `site-event.{event}` for the rule and the site for
the ip: `asicfleet:rules:held:site-event.{event}` (site -> since), `asicfleet:rules:cooldown:site-event.{event}:{site}`.

Firings (hash values are JSON) and their indexes are kept `LEDGER_DAYS`. A firing's `state`:
`dry-run` (recorded, nothing sent; a dry run with webhooks is `queued` like any other, and its worker
posts them with `dry_run: true` but sends no control), `capped` (the site's hourly cap was reached; nothing sent; the
miner's cooldown then ends with the clock hour, so it is tried again), `queued` (sent to the site's
workers), `running`, `done` (every action succeeded), `failed` (one did: `results` says which and why),
`notified`/`notify-failed` for site events. Nothing secret is in any of these: webhooks are named.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import redis
from celery import Celery
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, field_validator, model_validator

from asicfleet.data import HashRate, HashRateUnit, MinerData
from fleet.alerts import Alert, SiteEvent, SiteHashrateBelow, WebhookTarget, WorkersGone
from fleet.controls import BaseControl, FaultLightControl, MiningControl, PowerLimitControl, RestartControl
from fleet.monitor import DEFAULT_SITE, MinerState, site_options_key
from fleet.settings import FleetSettings
from fleet.sites import (
    DEFAULT_QUEUE,
    RULES_SECTIONS,
    DiscoveryOptions,
    SitesConfig,
    check_site_name,
    load_sites,
    read_config_file,
    site_queue,
)
from fleet.store import PREFIX

RULES = f"{PREFIX}:rules"
LEDGER_DAYS = 30
_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


# ----- keys ----------------------------------------------------------------------------------------
def held_key(rule: str) -> str:
    return f"{RULES}:held:{rule}"


def cooldown_key(rule: str, ip: str) -> str:
    return f"{RULES}:cooldown:{rule}:{ip}"


def budget_key(site: str, hour: int) -> str:
    return f"{RULES}:budget:{site}:{hour}"


def claim_key(rule: str, ip: str, window: int) -> str:
    return f"{RULES}:claim:{rule}:{ip}:{window}"


def firing_key(firing_id: str) -> str:
    return f"{RULES}:firing:{firing_id}"


def firings_key(site: str | None = None, ip: str | None = None) -> str:
    if ip is not None:
        return f"{RULES}:firings:ip:{ip}"
    if site is not None:
        return f"{RULES}:firings:site:{site}"
    return f"{RULES}:firings"


def site_summary_key(site: str) -> str:
    return f"{RULES}:site:{site}"


def sites_seen_key() -> str:
    return f"{RULES}:sites"


def site_event_rule(event: str) -> str:
    """The name site event `event` keeps its held state and cooldowns under (no rule name has a dot)."""
    return f"site-event.{event}"


# ----- what a round sees ---------------------------------------------------------------------------
class Observation(BaseModel):
    """One known miner as the latest collection round left it."""

    model_config = ConfigDict(frozen=True)

    ip: str
    site: str = ""
    make: str = ""
    model: str = ""
    data: MinerData | None = None  # the latest read (None: never read, or offline)
    online: bool = True
    last_seen: float | None = None  # unix seconds of the last answer

    @classmethod
    def of_state(cls, state: MinerState) -> Observation:
        """From the monitor's state of a miner (`fleet.monitor`): its latest data, online or not."""
        return cls(ip=state.ip, site=state.site, make=state.make, model=state.model, data=state.data,
                   online=state.online, last_seen=state.last_seen)

    @classmethod
    def of(cls, data: MinerData, site: str = "") -> Observation:
        return cls(ip=str(data.ip), site=site, make=data.make, model=data.model, data=data, online=True,
                   last_seen=float(data.timestamp))


class Verdict(BaseModel):
    """A condition's judgement: holds (True/False) or cannot tell (None), with the values it saw."""

    holds: bool | None
    values: dict[str, Any] = Field(default_factory=dict)
    since: float | None = None  # when it started holding, when the data says so (offline: last seen)


_TH = HashRateUnit.TH.multiplier


def _ths(rate: HashRate | None) -> float | None:
    """TH/s, by arithmetic (a HashRate conversion builds a model: too slow for every miner of every rule)."""
    return None if rate is None else round(rate.value * rate.unit.multiplier / _TH, 3)


# ----- conditions ----------------------------------------------------------------------------------
class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def check(self, obs: Observation) -> Verdict:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class HashrateBelow(_Condition):
    kind: Literal["hashrate_below"] = "hashrate_below"
    percent: float = Field(gt=0, le=100, description="of the expected hash rate")

    def check(self, obs: Observation) -> Verdict:
        data = obs.data
        if not obs.online or data is None:
            return Verdict(holds=None)
        rate, expected = _ths(data.hashrate), _ths(data.expected_hashrate)
        if rate is None or not expected:
            return Verdict(holds=None)
        share = round(100 * rate / expected, 1)
        return Verdict(holds=share < self.percent, values={"hashrate_ths": rate, "expected_ths": expected,
                                                           "percent_of_expected": share})

    def describe(self) -> str:
        return f"hash rate below {self.percent:g} % of expected"


class BoardFault(_Condition):
    """A hashboard missing, with chips missing (more than `max_missing_chips`), or hashing at zero."""

    kind: Literal["board_fault"] = "board_fault"
    max_missing_chips: int = Field(default=0, ge=0)
    zero_rate: bool = True

    def check(self, obs: Observation) -> Verdict:
        data = obs.data
        if not obs.online or data is None or (not data.hashboards and data.hardware.board_count is None):
            return Verdict(holds=None)
        faults: list[dict[str, Any]] = []
        for board in data.hashboards:
            missing = (board.expected_chips - board.working_chips
                       if board.expected_chips is not None and board.working_chips is not None else 0)
            rate = _ths(board.hashrate)
            if missing > self.max_missing_chips or (self.zero_rate and rate == 0 and data.is_mining is not False):
                faults.append({"board": board.position, "working_chips": board.working_chips,
                               "expected_chips": board.expected_chips, "hashrate_ths": rate})
        expected_boards = data.hardware.board_count
        seen = len(data.hashboards)
        values: dict[str, Any] = {"boards_seen": seen, "boards_expected": expected_boards, "faults": faults}
        return Verdict(holds=bool(faults) or (expected_boards is not None and seen < expected_boards), values=values)

    def describe(self) -> str:
        chips = f"over {self.max_missing_chips} chips" if self.max_missing_chips else "chips"
        parts = ["a hashboard missing", f"with {chips} missing"]
        return " or ".join(parts + (["hashing at zero"] if self.zero_rate else []))


class TemperatureAbove(_Condition):
    kind: Literal["temperature_above"] = "temperature_above"
    celsius: float = Field(gt=0, lt=200)
    sensor: Literal["chip", "board", "any"] = "any"

    def check(self, obs: Observation) -> Verdict:
        data = obs.data
        if not obs.online or data is None:
            return Verdict(holds=None)
        readings: list[tuple[float, str]] = []
        for board in data.hashboards:
            if self.sensor in ("board", "any") and board.board_temperature is not None:
                readings.append((board.board_temperature, f"board {board.position}"))
            if self.sensor in ("chip", "any"):
                chips = [c.temperature for c in board.chips if c.temperature is not None]
                chips += [t for t in (board.intake_temperature, board.outlet_temperature) if t is not None]
                readings += [(t, f"chip, board {board.position}") for t in chips]
        if not readings:
            return Verdict(holds=None)
        hottest, where = max(readings, key=lambda reading: reading[0])
        return Verdict(holds=hottest > self.celsius, values={"max_celsius": hottest, "where": where,
                                                             "limit_celsius": self.celsius})

    def describe(self) -> str:
        return f"{'chip or board' if self.sensor == 'any' else self.sensor} temperature above {self.celsius:g} °C"


class Offline(_Condition):
    """The miner does not answer; the rule's `for_minutes` counts from when it was last seen."""

    kind: Literal["offline"] = "offline"

    def check(self, obs: Observation) -> Verdict:
        if obs.online:
            return Verdict(holds=False)
        return Verdict(holds=True, since=obs.last_seen, values={"last_seen": obs.last_seen})

    def describe(self) -> str:
        return "offline"


class NoActivePool(_Condition):
    kind: Literal["no_active_pool"] = "no_active_pool"

    def check(self, obs: Observation) -> Verdict:
        data = obs.data
        if not obs.online or data is None:
            return Verdict(holds=None)
        pools = [p for g in data.pools for p in g.pools]
        flags = [p.active if p.active is not None else p.alive for p in pools]
        urls = [p.url for p in pools]
        if any(flags):
            return Verdict(holds=False, values={"pools": urls})
        if not pools and data.errors:
            return Verdict(holds=None)  # the pools read failed: no evidence either way
        if pools and any(f is None for f in flags):
            return Verdict(holds=None)  # the firmware does not say which pool is active
        return Verdict(holds=True, values={"pools": urls})

    def describe(self) -> str:
        return "no active pool"


class FanFailure(_Condition):
    """A fan at or below `min_rpm`, or fewer fans reported than the model has."""

    kind: Literal["fan_failure"] = "fan_failure"
    min_rpm: float = Field(default=0.0, ge=0)

    def check(self, obs: Observation) -> Verdict:
        data = obs.data
        if not obs.online or data is None:
            return Verdict(holds=None)
        rpms = [f.rpm for f in data.fans]
        expected = data.hardware.fans
        if not rpms and not expected:
            return Verdict(holds=None)
        stopped = [f.position for f in data.fans if f.rpm is not None and f.rpm <= self.min_rpm]
        missing = max(0, (expected or 0) - len(rpms))
        return Verdict(holds=bool(stopped) or missing > 0,
                       values={"fan_rpms": rpms, "fans_expected": expected, "stopped": stopped})

    def describe(self) -> str:
        return f"a fan at or below {self.min_rpm:g} rpm, or missing"


Condition = Annotated[HashrateBelow | BoardFault | TemperatureAbove | Offline | NoActivePool | FanFailure,
                      Field(discriminator="kind")]


# ----- scope ---------------------------------------------------------------------------------------
_Network = ipaddress.IPv4Network | tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]


def _parse_ip_range(text: str) -> _Network:
    try:
        if "-" in text:
            first, last = (ipaddress.IPv4Address(p.strip()) for p in text.split("-", 1))
            if last < first:
                raise ValueError(f"range {text!r} ends before it starts")
            return first, last
        return ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"bad IP range {text!r}: {exc}") from None


class Scope(BaseModel):
    """Which miners a rule looks at: every list given must match (empty lists match everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sites: list[str] = Field(default_factory=list)
    makes: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    ips: list[str] = Field(default_factory=list, description="CIDR, single address, or first-last")
    _networks: list[_Network] = PrivateAttr(default_factory=list)

    @field_validator("sites")
    @classmethod
    def _site_names(cls, sites: list[str]) -> list[str]:
        return [check_site_name(s) for s in sites]

    @model_validator(mode="after")
    def _ranges(self) -> Scope:
        self._networks = [_parse_ip_range(r) for r in self.ips]
        return self

    def matches(self, obs: Observation) -> bool:
        return self.matcher()(obs)

    def matcher(self) -> Callable[[Observation], bool]:
        """A test of one observation, with this scope's sets made once (a round asks it for every miner)."""
        sites = set(self.sites)
        makes = {_norm(m) for m in self.makes}
        models = {_norm(m) for m in self.models}
        networks = list(self._networks)
        if not (sites or makes or models or networks):
            return lambda obs: True

        def matches(obs: Observation) -> bool:
            if sites and obs.site not in sites:
                return False
            if makes and _norm(obs.make) not in makes:
                return False
            if models and _norm(obs.model) not in models:
                return False
            if networks:
                address = ipaddress.IPv4Address(obs.ip)
                return any(address in n if isinstance(n, ipaddress.IPv4Network) else n[0] <= address <= n[1]
                           for n in networks)
            return True

        return matches


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


# ----- actions -------------------------------------------------------------------------------------
class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def control(self) -> BaseControl | None:
        """The control the site's worker sends (None: not a miner control)."""
        return None

    def describe(self) -> str:
        control = self.control()
        return control.describe() if control else ""


class RestartAction(_Action):
    kind: Literal["restart"] = "restart"

    def control(self) -> BaseControl:
        return RestartControl()


class FaultLightAction(_Action):
    kind: Literal["fault_light"] = "fault_light"
    on: bool = True

    def control(self) -> BaseControl:
        return FaultLightControl(on=self.on)


class PauseAction(_Action):
    """Pause hashing (curtailment): `asicfleet resume` or a rollout brings the miner back."""

    kind: Literal["pause", "curtail"] = "pause"

    def control(self) -> BaseControl:
        return MiningControl(mining=False)


class PowerLimitAction(_Action):
    kind: Literal["power_limit"] = "power_limit"
    watts: float = Field(gt=0, le=100_000)

    def control(self) -> BaseControl:
        return PowerLimitControl(watts=self.watts)


class WebhookAction(_Action):
    kind: Literal["webhook"] = "webhook"
    target: str = Field(description="a name under `alerts:`")

    def describe(self) -> str:
        return f"webhook {self.target}"


Action = Annotated[RestartAction | FaultLightAction | PauseAction | PowerLimitAction | WebhookAction,
                   Field(discriminator="kind")]
_ACTION_ADAPTER: TypeAdapter[Any] = TypeAdapter(Action)


def parse_action(raw: dict[str, Any]) -> _Action:
    return _ACTION_ADAPTER.validate_python(raw)  # type: ignore[no-any-return]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    when: Condition
    for_minutes: float = Field(default=0.0, ge=0, description="how long the condition must hold before acting")
    scope: Scope = Field(default_factory=Scope)
    actions: list[Action] = Field(min_length=1)
    cooldown_minutes: float = Field(default=60.0, gt=0, description="per miner, between two firings")
    dry_run: bool = False
    enabled: bool = True

    @property
    def acts_on_miners(self) -> bool:
        return any(a.control() is not None for a in self.actions)


class RulesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)
    alerts: dict[str, WebhookTarget] = Field(default_factory=dict)
    site_events: list[SiteEvent] = Field(default_factory=list)
    max_actions_per_site_per_hour: int = Field(default=20, ge=0, description="miner actions; webhooks are free")
    dry_run: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> RulesConfig:
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        events = [e.name for e in self.site_events]
        if len(set(events)) != len(events):
            raise ValueError("site event names must be unique")
        for name in self.alerts:
            if not re.match(_NAME, name):
                raise ValueError(f"alert target name {name!r} must be lower-case letters, digits, '-' or '_'")
        wanted = {(r.name, a.target) for r in self.rules for a in r.actions if isinstance(a, WebhookAction)}
        wanted |= {(e.name, t) for e in self.site_events for t in e.notify}
        unknown = sorted(f"{who} -> {target}" for who, target in wanted if target not in self.alerts)
        if unknown:
            raise ValueError(f"webhook targets not defined under alerts: {', '.join(unknown)}")
        return self

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(f"no rule {name!r} in the rules file")

    def check_sites(self, known: Iterable[str]) -> None:
        """Refuses scopes and site events naming a site the sites file does not have."""
        sites = set(known)
        named = {s for r in self.rules for s in r.scope.sites} | {s for e in self.site_events for s in e.sites}
        unknown = sorted(named - sites)
        if unknown:
            raise ValueError(f"rules name sites the sites file does not have: {', '.join(unknown)}")


def rules_from_data(raw: Any, source: str = "rules") -> RulesConfig:
    """Validates a parsed rules file: its own (`rules:` ...) or a sites file with a `rules:` section."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping with `rules:`")
    if "sites" in raw:
        sites = SitesConfig.model_validate({k: v for k, v in raw.items() if k not in RULES_SECTIONS})
        config = RulesConfig.model_validate({k: v for k, v in raw.items() if k in RULES_SECTIONS})
        config.check_sites(sites.sites)
        return config
    return RulesConfig.model_validate(raw)


def load_rules(path: str | Path) -> RulesConfig:
    """Reads and validates a rules file (YAML or JSON); raises ValueError (pydantic's, or ours) with the reason."""
    return rules_from_data(read_config_file(path, "rules file"), str(path))


# ----- the ledger ----------------------------------------------------------------------------------
class ActionResult(BaseModel):
    action: str
    state: Literal["done", "failed", "skipped"]
    detail: str = ""


class Firing(BaseModel):
    """One evaluation that fired: what held, on which miner, what was seen, what was done and how it went."""

    id: str
    kind: Literal["rule", "site_event"] = "rule"
    rule: str
    site: str = ""
    ip: str = ""
    make: str = ""
    model: str = ""
    condition: str = ""
    values: dict[str, Any] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(default_factory=list, description="the actions as configured")
    state: str = "queued"
    dry_run: bool = False
    results: list[ActionResult] = Field(default_factory=list)
    fired_at: float
    held_since: float | None = None
    cooldown_seconds: float = 0.0
    options: dict[str, Any] = Field(default_factory=dict, description="DiscoveryOptions for the site's worker")
    updated: float = 0.0

    @property
    def window(self) -> int:
        return int(self.fired_at)

    def action_names(self) -> list[str]:
        return [parse_action(a).describe() for a in self.actions]

    def alert(self) -> Alert:
        where = f"{self.ip} ({self.make} {self.model}, site {self.site or 'default'})" if self.ip else \
            f"site {self.site or 'default'}"
        return Alert(kind="rule_firing" if self.kind == "rule" else "site_event", title=f"{self.rule}: {where}",
                     text=self.condition + ("; dry run: no control sent" if self.dry_run else ""),
                     site=self.site, ip=self.ip, rule=self.rule, firing_id=self.id, values=self.values,
                     actions=self.action_names(), results=[f"{r.action}: {r.state}" for r in self.results],
                     dry_run=self.dry_run, at=self.fired_at)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _firing_fields(item: Firing, *names: str) -> dict[str, str]:
    dumped = item.model_dump(mode="json")
    return {k: json.dumps(dumped[k]) for k in (names or dumped)}


def record_firing(r: redis.Redis, item: Firing) -> None:
    """Writes a firing and its three index entries; old index entries go as new ones come."""
    item.updated = time.time()
    keep = LEDGER_DAYS * 86400
    pipe = r.pipeline(transaction=True)
    pipe.hset(firing_key(item.id), mapping=_firing_fields(item))  # type: ignore[arg-type]
    pipe.expire(firing_key(item.id), keep)
    for index in {firings_key(), firings_key(site=item.site), *([firings_key(ip=item.ip)] if item.ip else [])}:
        pipe.zadd(index, {item.id: item.fired_at})
        pipe.zremrangebyscore(index, 0, item.fired_at - keep)
        pipe.expire(index, keep)
    pipe.execute()


def update_firing(r: redis.Redis, item: Firing) -> None:
    """Records a firing's new state and results."""
    item.updated = time.time()
    r.hset(firing_key(item.id), mapping=_firing_fields(item, "state", "results", "updated"))  # type: ignore[arg-type]


def firing(r: redis.Redis, firing_id: str) -> Firing | None:
    raw = r.hgetall(firing_key(firing_id))
    if not raw:
        return None
    return Firing.model_validate({_text(k): json.loads(_text(v)) for k, v in raw.items()})


def firings(r: redis.Redis, site: str | None = None, ip: str | None = None, limit: int = 50,
            rule: str | None = None) -> list[Firing]:
    """The latest firings, newest first: all, one site's, or one miner's (`ip` wins over `site`), optionally of
    one rule. The dashboard's read API."""
    ids = [_text(i) for i in r.zrevrange(firings_key(site=site, ip=ip), 0, max(0, limit * (4 if rule else 1)) - 1)]
    pipe = r.pipeline(transaction=False)
    for firing_id in ids:
        pipe.hgetall(firing_key(firing_id))
    out = []
    for raw in pipe.execute():
        if not raw:
            continue  # expired
        found = Firing.model_validate({_text(k): json.loads(_text(v)) for k, v in raw.items()})
        if (rule is None or found.rule == rule) and (ip is not None or site is None or found.site == site):
            out.append(found)
    return out[:limit]


# ----- state: held durations, cooldowns, budgets ---------------------------------------------------
class RuleState(Protocol):
    """Where the engine keeps what must outlive one round; Redis in production (`RedisRuleState`), a dict in
    the pure tests (`MemoryRuleState`)."""

    def held(self, rule: str) -> dict[str, float]: ...

    def update_held(self, rule: str, started: dict[str, float], cleared: Sequence[str]) -> None: ...

    def claim_cooldown(self, rule: str, ip: str, firing_id: str, now: float, seconds: float) -> bool: ...

    def end_cooldown_at(self, rule: str, ip: str, now: float, until: float) -> None: ...

    def take_budget(self, site: str, now: float, cap: int) -> bool: ...

    def record(self, item: Firing) -> None: ...

    def record_site(self, summary: SiteSummary) -> None: ...

    def sites(self) -> dict[str, SiteSummary]: ...


class SiteSummary(BaseModel):
    """A site's totals in its latest round."""

    site: str
    last_round: float
    online: int = 0
    offline: int = 0
    hashrate_ths: float = 0.0
    expected_ths: float = 0.0

    @property
    def percent_of_expected(self) -> float | None:
        return round(100 * self.hashrate_ths / self.expected_ths, 1) if self.expected_ths else None

    @classmethod
    def of(cls, site: str, observations: Sequence[Observation], now: float) -> SiteSummary:
        online = [o for o in observations if o.online]
        rate = sum(_ths(o.data.hashrate) or 0.0 for o in online if o.data is not None)
        expected = sum(_ths(o.data.expected_hashrate) or 0.0 for o in observations if o.data is not None)
        return cls(site=site, last_round=now, online=len(online), offline=len(observations) - len(online),
                   hashrate_ths=round(rate, 3), expected_ths=round(expected, 3))


class MemoryRuleState:
    """RuleState in a process's memory, with time as the caller says it is (for tests and dry evaluation)."""

    def __init__(self) -> None:
        self.held_since: dict[str, dict[str, float]] = {}
        self.cooldowns: dict[tuple[str, str], float] = {}  # -> until
        self.budgets: dict[tuple[str, int], int] = {}
        self.ledger: list[Firing] = []
        self.site_summaries: dict[str, SiteSummary] = {}

    def held(self, rule: str) -> dict[str, float]:
        return dict(self.held_since.get(rule, {}))

    def update_held(self, rule: str, started: dict[str, float], cleared: Sequence[str]) -> None:
        entry = self.held_since.setdefault(rule, {})
        entry.update(started)
        for ip in cleared:
            entry.pop(ip, None)

    def claim_cooldown(self, rule: str, ip: str, firing_id: str, now: float, seconds: float) -> bool:
        if self.cooldowns.get((rule, ip), 0.0) > now:
            return False
        self.cooldowns[(rule, ip)] = now + seconds
        return True

    def end_cooldown_at(self, rule: str, ip: str, now: float, until: float) -> None:
        self.cooldowns[(rule, ip)] = until

    def take_budget(self, site: str, now: float, cap: int) -> bool:
        key = (site, int(now // 3600))
        if self.budgets.get(key, 0) >= cap:
            return False
        self.budgets[key] = self.budgets.get(key, 0) + 1
        return True

    def record(self, item: Firing) -> None:
        self.ledger.append(item)

    def record_site(self, summary: SiteSummary) -> None:
        self.site_summaries[summary.site] = summary

    def sites(self) -> dict[str, SiteSummary]:
        return dict(self.site_summaries)


_TAKE_BUDGET = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
return 1
"""


class RedisRuleState:
    """RuleState in Redis, in the keys of the module docstring. Expiries follow the caller's `now`."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def held(self, rule: str) -> dict[str, float]:
        return {_text(k): float(_text(v)) for k, v in self.redis.hgetall(held_key(rule)).items()}

    def update_held(self, rule: str, started: dict[str, float], cleared: Sequence[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        if started:
            pipe.hset(held_key(rule), mapping=started)  # type: ignore[arg-type]
        if cleared:
            pipe.hdel(held_key(rule), *cleared)
        pipe.execute()

    @staticmethod
    def _ms_from_now(now: float, until: float) -> int:
        return max(1, int((until - now) * 1000))

    def claim_cooldown(self, rule: str, ip: str, firing_id: str, now: float, seconds: float) -> bool:
        return bool(self.redis.set(cooldown_key(rule, ip), firing_id, nx=True,
                                   px=self._ms_from_now(now, now + seconds)))

    def end_cooldown_at(self, rule: str, ip: str, now: float, until: float) -> None:
        self.redis.pexpire(cooldown_key(rule, ip), self._ms_from_now(now, until))

    def take_budget(self, site: str, now: float, cap: int) -> bool:
        hour = int(now // 3600)
        return bool(self.redis.eval(_TAKE_BUDGET, 1, budget_key(site, hour), cap, (hour + 2) * 3600))

    def record(self, item: Firing) -> None:
        record_firing(self.redis, item)

    def record_site(self, summary: SiteSummary) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(site_summary_key(summary.site), mapping=summary.model_dump())  # type: ignore[arg-type]
        pipe.sadd(sites_seen_key(), summary.site)
        pipe.execute()

    def sites(self) -> dict[str, SiteSummary]:
        names = sorted(_text(s) for s in self.redis.smembers(sites_seen_key()))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(site_summary_key(name))
        return {name: SiteSummary.model_validate({_text(k): _text(v) for k, v in raw.items()})
                for name, raw in zip(names, pipe.execute(), strict=True) if raw}


def new_firing_id(now: float) -> str:
    return f"f{int(now * 1000)}-{secrets.token_hex(3)}"


# ----- the engine ----------------------------------------------------------------------------------
class RuleEngine:
    """Evaluates every rule over a round's observations; returns the firings it recorded."""

    def __init__(self, config: RulesConfig, state: RuleState,
                 options: dict[str, DiscoveryOptions] | None = None) -> None:
        self.config = config
        self.state = state
        self.options = options or {}  # per site: how its worker reaches the miners (ports, timeouts)

    def evaluate(self, observations: Sequence[Observation], now: float | None = None) -> list[Firing]:
        """One collection round (of one site or several): the rules, then the site hash rate events."""
        now = time.time() if now is None else now
        fired: list[Firing] = []
        for rule in self.config.rules:
            if rule.enabled:
                in_scope = rule.scope.matcher()
                fired += self._evaluate_rule(rule, [o for o in observations if in_scope(o)], now)
        by_site: dict[str, list[Observation]] = {}
        for obs in observations:
            by_site.setdefault(obs.site, []).append(obs)
        for site, seen in sorted(by_site.items()):
            summary = SiteSummary.of(site, seen, now)
            self.state.record_site(summary)
            for event in self.config.site_events:
                if isinstance(event, SiteHashrateBelow) and event.applies_to(site):
                    fired += self._site_event(event, summary, now)
        return fired

    def check_sites(self, now: float | None = None) -> list[Firing]:
        """Between rounds (a beat task): sites whose rounds stopped (`workers_gone`)."""
        now = time.time() if now is None else now
        fired: list[Firing] = []
        for summary in self.state.sites().values():
            for event in self.config.site_events:
                if isinstance(event, WorkersGone) and event.applies_to(summary.site):
                    fired += self._site_event(event, summary, now)
        return fired

    def _site_event(self, event: SiteEvent, summary: SiteSummary, now: float) -> list[Firing]:
        name = site_event_rule(event.name)
        values: dict[str, Any]
        if isinstance(event, SiteHashrateBelow):
            share = summary.percent_of_expected
            holds = share is not None and share < event.percent
            for_seconds = event.for_minutes * 60
            text = f"site hash rate below {event.percent:g} % of expected"
            values = {"hashrate_ths": summary.hashrate_ths, "expected_ths": summary.expected_ths,
                      "percent_of_expected": share, "online": summary.online, "offline": summary.offline}
        else:
            quiet = now - summary.last_round
            holds, for_seconds = quiet >= event.minutes * 60, 0.0
            text = f"no collection round for {event.minutes:g} min: the site's workers are gone"
            values = {"last_round": summary.last_round, "minutes_since": round(quiet / 60, 1)}
        held = self.state.held(name).get(summary.site)
        if not holds:
            if held is not None:
                self.state.update_held(name, {}, [summary.site])
            return []
        if held is None:
            held = now
            self.state.update_held(name, {summary.site: now}, [])
        if now - held < for_seconds:
            return []
        cooldown = event.cooldown_minutes * 60
        firing_id = new_firing_id(now)
        if not self.state.claim_cooldown(name, summary.site, firing_id, now, cooldown):
            return []
        result = Firing(id=firing_id, kind="site_event", rule=event.name, site=summary.site, condition=text,
                        values=values, actions=[{"kind": "webhook", "target": t} for t in event.notify],
                        state="queued", fired_at=now, held_since=held, cooldown_seconds=cooldown)
        self.state.record(result)
        return [result]

    def _evaluate_rule(self, rule: Rule, observations: Sequence[Observation], now: float) -> list[Firing]:
        held = self.state.held(rule.name)
        started: dict[str, float] = {}
        cleared: list[str] = []
        due: list[tuple[Observation, Verdict, float]] = []
        for obs in observations:
            verdict = rule.when.check(obs)
            if not verdict.holds:
                if obs.ip in held:
                    cleared.append(obs.ip)
                continue
            since = held.get(obs.ip)
            if since is None:
                since = min(now, verdict.since) if verdict.since is not None else now
                started[obs.ip] = since
            if now - since >= rule.for_minutes * 60:
                due.append((obs, verdict, since))
        self.state.update_held(rule.name, started, cleared)
        return [f for f in (self._fire(rule, obs, verdict, since, now) for obs, verdict, since in due) if f]

    def _fire(self, rule: Rule, obs: Observation, verdict: Verdict, since: float, now: float) -> Firing | None:
        cooldown = rule.cooldown_minutes * 60
        firing_id = new_firing_id(now)
        if not self.state.claim_cooldown(rule.name, obs.ip, firing_id, now, cooldown):
            return None  # within its cooldown (or another evaluation of this round fired it)
        dry = rule.dry_run or self.config.dry_run
        notifies = any(isinstance(a, WebhookAction) for a in rule.actions)
        # a dry run sends no control, but its webhooks still tell what it would have done
        state = "dry-run" if dry and not notifies else "queued"
        if not dry and rule.acts_on_miners and not self.state.take_budget(
                obs.site, now, self.config.max_actions_per_site_per_hour):
            state = "capped"
            next_hour = (math.floor(now / 3600) + 1) * 3600
            self.state.end_cooldown_at(rule.name, obs.ip, now, min(now + cooldown, next_hour))
        options = self.options.get(obs.site)
        result = Firing(id=firing_id, rule=rule.name, site=obs.site, ip=obs.ip, make=obs.make, model=obs.model,
                        condition=rule.when.describe() + (f" for {rule.for_minutes:g} min" if rule.for_minutes else ""),
                        values=verdict.values, actions=[a.model_dump(mode="json") for a in rule.actions], state=state,
                        dry_run=dry, fired_at=now, held_since=since, cooldown_seconds=cooldown,
                        options=options.model_dump(mode="json") if options else {})
        self.state.record(result)
        return result


# ----- running a round: load the configured rules, evaluate, hand the firings to the workers --------------
RULE_ACTION = "asicfleet.rule_action"  # one firing's actions, on its site's queue
CHECK_SITES = "asicfleet.rules_check_sites"  # beat: site events between rounds (workers gone)

_CACHE: dict[tuple[Path, Path | None], tuple[float, RulesConfig]] = {}  # (rules, sites file) -> (mtime, rules)


def configured_rules(settings: FleetSettings) -> RulesConfig | None:
    """The rules of `ASICFLEET_RULES_FILE` (which then wins over a `rules:` section of the sites file), else of
    the sites file's `rules:` section; None when there are none. Read again when the file changes."""
    path = settings.rules_file
    if path is None and settings.sites_file is not None:
        path = settings.sites_file
    if path is None:
        return None
    path = Path(path)
    mtime = path.stat().st_mtime
    key = (path, settings.sites_file if settings.rules_file is not None else None)
    cached = _CACHE.get(key)
    if cached is None or cached[0] != mtime:
        config = load_rules(path)
        if settings.rules_file is not None and settings.sites_file is not None:
            # a rules file of its own names the sites of the sites file (or the monitor's default site)
            config.check_sites([*load_sites(settings.sites_file).sites, DEFAULT_SITE])
        _CACHE[key] = cached = (mtime, config)
    config = cached[1]
    return config if config.rules or config.site_events else None


def site_options(client: redis.Redis, settings: FleetSettings, sites: Iterable[str]) -> dict[str, DiscoveryOptions]:
    """How each site's worker reaches a miner (ports, timeouts): the options of the site's latest scan the
    monitor took its inventory from, else the sites file's."""
    configured = load_sites(settings.sites_file).sites if settings.sites_file is not None else {}
    out: dict[str, DiscoveryOptions] = {}
    for site in sites:
        raw = client.get(site_options_key(site))
        if raw:
            out[site] = DiscoveryOptions.model_validate_json(raw)
        elif site in configured:
            out[site] = configured[site].discovery
    return out


def firing_display_name(item: Firing) -> str:
    where = item.ip or f"site {item.site or 'default'}"
    return f"rule {item.rule} {where} {', '.join(item.action_names())}"[:120]


def dispatch(app: Celery, fired: Iterable[Firing], client: redis.Redis | None = None) -> int:
    """Sends each queued firing to its site's workers (site events: the default queue, as the site's own
    workers may be the ones gone). Returns how many were sent. A firing the broker did not take is recorded
    `failed` (with the reason) and its cooldown is let go, so the next round tries again."""
    sent = 0
    for item in fired:
        if item.state != "queued":
            continue
        own_queue = item.kind == "rule" and item.site not in ("", DEFAULT_SITE)  # scans without a site: default
        queue = site_queue(item.site) if own_queue else DEFAULT_QUEUE
        try:
            app.send_task(RULE_ACTION, kwargs={"firing_id": item.id, "site": item.site or None}, queue=queue,
                          shadow=firing_display_name(item))
        except Exception as exc:  # the broker is away: say so in the ledger rather than leave it `queued`
            if client is None:
                raise
            item.state = "failed"
            item.results = [ActionResult(action="queue", state="failed",
                                         detail=f"not queued to {queue}: {type(exc).__name__}")]
            update_firing(client, item)
            rule = item.rule if item.kind == "rule" else site_event_rule(item.rule)
            client.delete(cooldown_key(rule, item.ip or item.site))
            continue
        sent += 1
    return sent


def run_round(client: redis.Redis, app: Celery, settings: FleetSettings, observations: Sequence[Observation],
              now: float | None = None, options: dict[str, DiscoveryOptions] | None = None) -> list[Firing]:
    """What runs after each collection round: evaluate the configured rules, send what fired."""
    config = configured_rules(settings)
    if config is None:
        return []
    if options is None:
        options = site_options(client, settings, {o.site for o in observations})
    engine = RuleEngine(config, RedisRuleState(client), options)
    fired = engine.evaluate(observations, now)
    dispatch(app, fired, client)
    return fired


__all__ = [
    "Action",
    "ActionResult",
    "BoardFault",
    "Condition",
    "FanFailure",
    "Firing",
    "HashrateBelow",
    "MemoryRuleState",
    "NoActivePool",
    "Observation",
    "Offline",
    "RedisRuleState",
    "Rule",
    "RuleEngine",
    "RuleState",
    "RulesConfig",
    "Scope",
    "SiteEvent",
    "SiteHashrateBelow",
    "TemperatureAbove",
    "Verdict",
    "WorkersGone",
    "configured_rules",
    "dispatch",
    "firing",
    "firings",
    "load_rules",
    "parse_action",
    "record_firing",
    "rules_from_data",
    "run_round",
    "update_firing",
]
