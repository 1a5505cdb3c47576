"""Command line for controls and rollouts: `asicfleet apply`, single controls, `asicfleet rollout ...`."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from asicfleet import InvalidTargetError
from asicfleet.data import MinerData
from fleet.controls import (
    BaseControl,
    FactoryResetControl,
    FaultLightControl,
    FirmwareControl,
    MiningControl,
    PasswordControl,
    PowerLimitControl,
    ReadLogsControl,
    RestartControl,
    parse_control,
)
from fleet.ledger import RolloutPlan, RolloutProgress, RolloutStatus
from fleet.loop import run_async
from fleet.resilience import RedisAuthRefused, RedisUnavailable, check_redis
from fleet.settings import get_settings
from fleet.sites import DiscoveryOptions
from orchestrator import friendly, render, views
from orchestrator.local import ClusterStartError, configured_redis, local_cluster
from orchestrator.rollouts import Rollouts, spread_pause
from orchestrator.targeting import MinerFilter, filter_inventory, plan_rollout, scan_targets
from orchestrator.watch import Orchestrator

stderr = Console(stderr=True)
rollout_app = typer.Typer(help="Follow, resume and roll back rollouts.", no_args_is_help=True, rich_markup_mode=None)

Target = Annotated[list[str], typer.Option("--target", "-t", help="a scan id, or CIDRs/ranges/IPs to scan first")]
Filters = Annotated[list[str] | None,
                    typer.Option("--filter", help="make=, model=, firmware=, site=, ip= (repeatable)")]
HELP = {  # the options every control command shares, documented once
    "batch": 'miners per batch',
    "canary": 'miners in the first batch',
    "max_fail": 'stop when a batch fails more than this (e.g. 10%)',
    "pause": 'seconds between batches',
    "spread_minutes": 'spread the batches over N minutes',
    "verify_timeout": 'seconds to wait for a change to show',
    "dry_run": 'show current -> new per miner; send nothing',
    "local_workers": 'start this many workers (and a private Redis) for this command',
    "ports": "port map, e.g. 80=10080,443=10443 (default: the scan's, for a scan id)",
    "site": "run on this site's workers",
    "sha256": "the image's SHA-256, checked before it is sent",
    "limit": 'how many of the latest rollouts',
}
LocalWorkers = Annotated[int, typer.Option(min=0, max=64, help=HELP["local_workers"])]
Ports = Annotated[str, typer.Option(help=HELP["ports"])]
DryRun = Annotated[bool, typer.Option(help=HELP["dry_run"])]
Batch = Annotated[int, typer.Option(min=1, help=HELP["batch"])]
Canary = Annotated[int, typer.Option(min=0, help=HELP["canary"])]
SCAN_ID = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{6}$")


def _fail(message: str, code: int = 2) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # one line each: greppable
    return typer.Exit(code)


def _percent(text: str) -> float:
    value = text.strip()
    number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    if not 0 <= number <= 1:
        raise ValueError(f"--max-fail {text!r} must be between 0% and 100%")
    return number


@contextmanager
def _rollouts(local_workers: int, site: str | None) -> Iterator[Rollouts]:
    """Rollouts on the configured Redis (with `local_workers`, a local cluster for the duration)."""
    settings = get_settings()
    try:
        with local_cluster(configured_redis(settings), local_workers, site, settings.redis_url) as url:
            try:
                check_redis(url)
            except RedisAuthRefused as exc:
                raise _fail(str(exc)) from None
            except RedisUnavailable as exc:
                raise _fail(f"{exc}: set ASICFLEET_REDIS_URL, or pass --local-workers N") from None
            try:
                yield Rollouts(settings.model_copy(update={"redis_url": url}))
            except RedisUnavailable as exc:
                raise _fail(f"{exc}. The workers carry the rollout on when Redis answers again; `asicfleet "
                            "rollout status ID` shows it, `asicfleet rollout resume ID` re-queues what is left",
                            code=1) from None
    except ClusterStartError as exc:
        raise _fail(str(exc)) from None


@dataclass
class ResolvedTargets:
    miners: list[MinerData]
    site: str | None
    scan_options: DiscoveryOptions | None  # how the first scan id targeted was made (its port map, timeouts)


def _resolve_targets(targets: list[str], filters: list[MinerFilter], options: DiscoveryOptions | None,
                     rollouts: Rollouts | None) -> ResolvedTargets:
    """Scan ids are read from Redis; anything else is scanned first (with `options`, or, when the caller
    gave none, the options of the scan id targeted alongside)."""
    inventory: list[MinerData] = []
    site: str | None = None
    scan_options: DiscoveryOptions | None = None
    addresses: list[str] = []
    for target in targets:
        if SCAN_ID.match(target) and rollouts is not None:
            orchestrator = Orchestrator(rollouts.settings, rollouts.app)
            info = orchestrator.store.scan(target)
            if info is None:
                raise _fail(f"no scan {target!r} in Redis (never started, or expired)")
            site = site or info.site
            if scan_options is None:
                scan_options = DiscoveryOptions.model_validate(info.options)
            inventory += orchestrator.inventory(target)
        else:
            addresses.append(target)
    if addresses:
        inventory += run_async(scan_targets(addresses, options or scan_options or DiscoveryOptions()))
    return ResolvedTargets(filter_inventory(inventory, filters, site), site, scan_options)


def discovery_for(ports: str, scan_options: DiscoveryOptions | None) -> DiscoveryOptions:
    """A rollout on a scan id reaches its miners as that scan did (port map, timeouts, public space);
    `--ports` given on the command line wins."""
    base = scan_options or DiscoveryOptions()
    return base.model_copy(update={"ports": DiscoveryOptions(ports=ports).ports}) if ports else base


def _show_plan(plan: RolloutPlan, dry_run: bool) -> None:
    describe = {m.ip: parse_control(m.desired).describe() for m in plan.miners if m.desired is not None}
    current = {m.ip: _short(m.current) for m in plan.miners if m.desired is not None}
    console = Console()
    console.print(views.plan_view(plan, dry_run, console.width, describe, current))
    batches = plan.batches()
    changing = sum(m.skip_reason is None for m in plan.miners)
    stderr.print(f"{render.plural(changing, 'miner')} to change in {render.plural(len(batches), 'batch', 'batches')} "
                 f"(canary {plan.canary}, then {plan.batch_size}), "
                 f"{sum(m.skip_reason is not None for m in plan.miners)} skipped")


def _short(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict) and "pools" in value[0]:
        return "; ".join(f"{p.get('url')} {p.get('username')}" for g in value for p in g["pools"])
    return json.dumps(value) if not isinstance(value, str) else value


@contextmanager
def _progress_bar(rollout_id: str) -> Iterator[Callable[[RolloutProgress], None]]:
    bar = Progress(TextColumn(f"[bold]{rollout_id}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("miners · batch {task.fields[batch]} · {task.fields[counts]}"), TimeElapsedColumn(),
                   console=stderr)
    with bar:
        task = bar.add_task("rollout", total=None, batch="-", counts="")

        def update(p: RolloutProgress) -> None:
            counts = ", ".join(f"{n} {step}" for step, n in sorted(p.counts.items()))
            bar.update(task, total=p.total, completed=p.finished, counts=counts,
                       batch=f"{p.batches_done}/{p.batches_total}")

        yield update


def _follow(rollouts: Rollouts, rollout_id: str, resume: bool) -> RolloutProgress:
    with _progress_bar(rollout_id) as update:
        return (rollouts.resume if resume else rollouts.run)(rollout_id, update)


def _watch(rollouts: Rollouts, rollout_id: str) -> RolloutProgress:
    """Follows a rollout another process drives, until it is no longer running."""
    with _progress_bar(rollout_id) as update:
        while True:
            progress = rollouts.progress(rollout_id)
            update(progress)
            if progress.status is not RolloutStatus.RUNNING:
                return progress
            time.sleep(0.5)


def _ledger_table(rollouts: Rollouts, rollout_id: str) -> Table:
    table = Table(title=f"rollout {rollout_id}")
    for heading in ("IP", "Make", "Model", "State", "Detail"):
        table.add_column(heading, overflow="fold")
    for ip, miner in sorted(rollouts.ledger.miners(rollout_id).items(),
                            key=lambda kv: tuple(int(p) for p in kv[0].split("."))):
        style = {"verified": "green", "failed": "red", "unverified": "yellow", "pending": "bold yellow",
                 "skipped": "dim"}.get(miner["state"])
        table.add_row(ip, miner.get("make", ""), miner.get("model", ""),
                      f"[{style}]{miner['state']}[/]" if style else miner["state"], miner.get("detail", "")[:300])
    return table


def _finish(rollouts: Rollouts, rollout_id: str, final: RolloutProgress) -> None:
    Console().print(_ledger_table(rollouts, rollout_id))
    info = rollouts.ledger.info(rollout_id)
    summary = ", ".join(f"{n} {step}" for step, n in sorted(final.counts.items()))
    stderr.print(f"rollout {rollout_id}: {final.status.value} ({summary})")
    if final.status is RolloutStatus.STOPPED:
        raise _fail(f"stopped: {info.get('stopped_reason', '')}", code=1)
    if final.counts.get("failed"):
        raise typer.Exit(1)
    if not final.counts.get("verified"):  # skipped and unverified only: nothing is known to have changed
        raise _fail(f"rollout {rollout_id} changed no miner (none verified)", code=1)


def run_control(control: BaseControl, targets: list[str], filters: list[str] | None, batch: int, canary: int,
                max_fail: str, pause: float, spread_minutes: float | None, verify_timeout: float, dry_run: bool,
                local_workers: int, ports: str, site: str | None) -> None:
    """Plans (validating everything before any change), shows the plan, then runs it on the workers."""
    try:
        limit = _percent(max_fail)
        parsed_filters = [MinerFilter.parse(f) for f in filters or []]
        given = DiscoveryOptions(ports=ports) if ports else None  # a bad --ports is refused here
        control.placeholders()
    except ValidationError as exc:
        raise _fail(friendly.validation_message(exc, source="--ports")) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    with ExitStack() as stack:
        # a dry run of addresses needs no Redis; anything else records a rollout (or reads a scan)
        needs_redis = not dry_run or any(SCAN_ID.match(t) for t in targets)
        rollouts = stack.enter_context(_rollouts(0 if dry_run else local_workers, site)) if needs_redis else None
        try:
            resolved = _resolve_targets(targets, parsed_filters, given, rollouts)
        except InvalidTargetError as exc:
            raise _fail(str(exc)) from None
        if not resolved.miners:
            raise _fail("no miner matches the targets and filters", code=1)
        options = discovery_for(ports, resolved.scan_options)
        plan = run_async(plan_rollout(control, resolved.miners, options=options, batch_size=batch, canary=canary,
                                      pause_seconds=pause, max_fail=limit, verify_timeout=verify_timeout,
                                      site=site or resolved.site, read_current=dry_run))
        if spread_minutes is not None:
            plan.pause_seconds = spread_pause(sum(m.skip_reason is None for m in plan.miners) - plan.canary,
                                              batch, spread_minutes)
        _show_plan(plan, dry_run)
        if all(m.skip_reason is not None for m in plan.miners):
            raise _fail(f"nothing to do: all {render.plural(len(plan.miners), 'target')} skipped "
                        f"({_reasons(plan)}); nothing was sent", code=1)
        if dry_run:
            return
        assert rollouts is not None
        rollout_id = rollouts.create(plan)
        stderr.print(f"rollout {rollout_id} started (status: asicfleet rollout status {rollout_id})")
        _finish(rollouts, rollout_id, _follow(rollouts, rollout_id, resume=False))


def _reasons(plan: RolloutPlan) -> str:
    counts = Counter(m.skip_reason for m in plan.miners if m.skip_reason)
    return "; ".join(f"{n} x {reason}" for reason, n in counts.most_common(3))


def register(app: typer.Typer) -> None:
    """Adds the control commands to the `asicfleet` command line."""

    @app.command()
    def apply(
        config: Annotated[Path, typer.Argument(help="YAML/JSON: {pools: [...]}, {fan: ...}, {tuning: ...}, "
                                                    "{scaling: ...}, {power_limit: W} or a full control")],
        target: Target,
        filter_: Filters = None,
        batch: Batch = 50,
        canary: Canary = 5,
        max_fail: Annotated[str, typer.Option(help=HELP["max_fail"])] = "10%",
        pause: Annotated[float, typer.Option(min=0, help=HELP["pause"])] = 0.0,
        spread_minutes: Annotated[float | None, typer.Option(min=0, help=HELP["spread_minutes"])] = None,
        verify_timeout: Annotated[float, typer.Option(min=1, help=HELP["verify_timeout"])] = 120.0,
        dry_run: DryRun = False,
        local_workers: LocalWorkers = 0,
        ports: Ports = "",
        site: Annotated[str | None, typer.Option(help=HELP["site"])] = None,
    ) -> None:
        """Roll a configuration out to a target set: canary, batches, verification, automatic stop."""
        try:
            control = friendly.load_control(config)
        except friendly.ConfigFileError as exc:
            raise _fail(str(exc)) from None
        run_control(control, target, filter_, batch, canary, max_fail, pause, spread_minutes, verify_timeout,
                    dry_run, local_workers, ports, site)

    def single(name: str, make: Any, help_text: str) -> None:
        def command(
            target: Target,
            filter_: Filters = None,
            batch: Batch = 50,
            canary: Canary = 5,
            max_fail: Annotated[str, typer.Option(help=HELP["max_fail"])] = "10%",
            pause: Annotated[float, typer.Option(min=0, help=HELP["pause"])] = 0.0,
            spread_minutes: Annotated[float | None, typer.Option(min=0, help=HELP["spread_minutes"])] = None,
            verify_timeout: Annotated[float, typer.Option(min=1, help=HELP["verify_timeout"])] = 120.0,
            dry_run: DryRun = False,
            local_workers: LocalWorkers = 0,
            ports: Ports = "",
            site: Annotated[str | None, typer.Option(help=HELP["site"])] = None,
        ) -> None:
            run_control(make(), target, filter_, batch, canary, max_fail, pause, spread_minutes, verify_timeout,
                        dry_run, local_workers, ports, site)

        command.__doc__ = help_text
        app.command(name)(command)

    single("restart", RestartControl, "Restart the target miners (verified by their uptime).")
    single("pause", lambda: MiningControl(mining=False), "Stop hashing on the target miners.")
    single("resume", lambda: MiningControl(mining=True), "Resume hashing on the target miners.")
    single("factory-reset", FactoryResetControl, "Reset the target miners to factory settings.")
    single("logs", ReadLogsControl, "Read the target miners' logs into the rollout ledger.")

    @app.command("fault-light")
    def fault_light(state: Annotated[str, typer.Argument(help="on or off")], target: Target,
                    filter_: Filters = None, local_workers: LocalWorkers = 0,
                    ports: Ports = "", dry_run: DryRun = False,
                    batch: Batch = 50) -> None:
        """Turn the fault (locate) light on or off."""
        if state not in ("on", "off"):
            raise _fail("the fault light is 'on' or 'off'")
        run_control(FaultLightControl(on=state == "on"), target, filter_, batch, 0, "100%", 0, None, 60, dry_run,
                    local_workers, ports, None)

    @app.command("power-limit")
    def power_limit(watts: Annotated[float, typer.Argument(min=1)], target: Target, filter_: Filters = None,
                    batch: Batch = 50, canary: Canary = 5,
                    max_fail: Annotated[str, typer.Option(help=HELP["max_fail"])] = "10%",
                    spread_minutes: Annotated[float | None, typer.Option(min=0, help=HELP["spread_minutes"])] = None,
                    dry_run: DryRun = False,
                    local_workers: LocalWorkers = 0,
                    ports: Ports = "") -> None:
        """Set a power limit (watts) on the target miners."""
        run_control(PowerLimitControl(watts=watts), target, filter_, batch, canary, max_fail, 0, spread_minutes,
                    120, dry_run, local_workers, ports, None)

    @app.command()
    def curtail(direction: Annotated[str, typer.Argument(help="down (pause) or up (resume)")], target: Target,
                over: Annotated[float, typer.Option(min=0, help="minutes to spread the change over")] = 10.0,
                steps: Annotated[int, typer.Option(min=1, help="how many steps")] = 10, filter_: Filters = None,
                dry_run: DryRun = False,
                local_workers: LocalWorkers = 0,
                ports: Ports = "") -> None:
        """Power a target set down or up in steps spread over N minutes, so a site never jumps its load."""
        if direction not in ("down", "up"):
            raise _fail("curtail 'down' or 'up'")
        try:
            options = DiscoveryOptions(ports=ports) if ports else None
            parsed = [MinerFilter.parse(f) for f in filter_ or []]
        except ValidationError as exc:
            raise _fail(friendly.validation_message(exc, source="--ports")) from None
        except ValueError as exc:
            raise _fail(str(exc)) from None
        with _rollouts(0, None) as rollouts:
            count = len(_resolve_targets(target, parsed, options, rollouts).miners)
        per_step = max(1, -(-count // steps))
        run_control(MiningControl(mining=direction == "up"), target, filter_, per_step, 0, "100%", 0, over, 120,
                    dry_run, local_workers, ports, None)

    @app.command()
    def password(target: Target, from_env: Annotated[str, typer.Option(help="variable holding the new password "
                                                                            "(on the workers)")] =
                 "ASICFLEET_NEW_MINER_PASSWORD", filter_: Filters = None,
                 local_workers: LocalWorkers = 0,
                 ports: Ports = "") -> None:
        """Change the miners' password; the new one is read from the environment, never from the command line."""
        run_control(PasswordControl(password_env=from_env), target, filter_, 50, 5, "10%", 0, None, 60, False,
                    local_workers, ports, None)

    @app.command()
    def firmware(image: Annotated[str, typer.Argument(help="image file (readable by the workers) or http(s) URL")],
                 target: Target, make: Annotated[str, typer.Option(help="the make the image is for")],
                 model: Annotated[list[str], typer.Option(help="a model the image is for (repeatable)")],
                 for_firmware: Annotated[str, typer.Option(help="the firmware the image is, e.g. Stock")],
                 version: Annotated[str, typer.Option(help="the version the miners report once upgraded")],
                 sha256: Annotated[str | None, typer.Option(help=HELP["sha256"])] = None, filter_: Filters = None,
                 batch: Batch = 20, canary: Canary = 2,
                 max_fail: Annotated[str, typer.Option(help=HELP["max_fail"])] = "5%",
                 verify_timeout: Annotated[float, typer.Option(min=1, help=HELP["verify_timeout"])] = 900.0,
                 dry_run: DryRun = False,
                 local_workers: LocalWorkers = 0,
                 ports: Ports = "") -> None:
        """Upgrade firmware: only miners of the image's make and models get it; verified by the new version."""
        try:
            control = FirmwareControl(source=image, make=make, models=model, firmware=for_firmware, version=version,
                                      sha256=sha256)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        run_control(control, target, filter_, batch, canary, max_fail, 0, None, verify_timeout, dry_run,
                    local_workers, ports, None)

    @rollout_app.command("status")
    def status(rollout_id: str,
               follow: Annotated[bool, typer.Option(help="a live progress bar while the rollout runs")] = True,
               ) -> None:
        """Show a rollout's progress live while it runs, then its ledger and counts."""
        with _rollouts(0, None) as rollouts:
            try:
                progress = rollouts.progress(rollout_id)
            except KeyError as exc:
                raise _fail(str(exc.args[0])) from None
            if follow and progress.status is RolloutStatus.RUNNING:
                progress = _watch(rollouts, rollout_id)
            Console().print(_ledger_table(rollouts, rollout_id))
            pending = rollouts.pending(rollout_id)
        counts = ", ".join(f"{n} {step}" for step, n in sorted(progress.counts.items()))
        stderr.print(f"{progress.status.value}: batch {progress.batches_done}/{progress.batches_total}; {counts}")
        if pending:
            stderr.print(f"[yellow]{len(pending)} miners may have the change written but not applied (pending): "
                         f"{', '.join(sorted(pending))}. `asicfleet rollout resume {rollout_id}` sends it again in "
                         f"full; `asicfleet rollout rollback {rollout_id}` writes the previous value back[/]")

    @rollout_app.command("resume")
    def resume(rollout_id: str, local_workers: LocalWorkers = 0) -> None:
        """Continue an interrupted rollout; miners already done are not sent to again."""
        with _rollouts(local_workers, None) as rollouts:
            try:
                final = _follow(rollouts, rollout_id, resume=True)
            except KeyError as exc:
                raise _fail(str(exc.args[0])) from None
            _finish(rollouts, rollout_id, final)

    @rollout_app.command("rollback")
    def rollback(rollout_id: str, local_workers: LocalWorkers = 0) -> None:
        """Restore each changed miner's previous setting (a new rollout, recorded like any other)."""
        with _rollouts(local_workers, None) as rollouts:
            try:
                plan = rollouts.rollback_plan(rollout_id)
            except (KeyError, ValueError) as exc:
                raise _fail(str(exc.args[0])) from None
            new_id = rollouts.create(plan)
            stderr.print(f"rollback {new_id} of {rollout_id} started")
            _finish(rollouts, new_id, _follow(rollouts, new_id, resume=False))

    @rollout_app.command("list")
    def list_rollouts(limit: Annotated[int, typer.Option(min=1, help=HELP["limit"])] = 20) -> None:
        """Recent rollouts."""
        with _rollouts(0, None) as rollouts:
            table = Table(title="recent rollouts")
            for heading in ("id", "status", "control", "miners", "batches", "parent"):
                table.add_column(heading, overflow="fold")
            for info in rollouts.ledger.recent(limit):
                table.add_row(info["id"], info["status"], json.loads(info["control"]).get("kind", ""), info["total"],
                              info["batches"], info.get("parent", ""))
            Console().print(table)

    app.add_typer(rollout_app, name="rollout")
