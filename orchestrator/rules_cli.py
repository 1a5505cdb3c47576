"""`asicfleet rules check FILE` (validate a rules file and show what it holds) and `asicfleet rules firings`
(the ledger of rule firings and site events)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from fleet.resilience import RedisUnavailable, retry
from fleet.rules import Firing, RulesConfig, firings, load_rules
from fleet.settings import get_settings

rules_app = typer.Typer(help="Rules that act on the fleet, and their ledger.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def validation_lines(exc: ValidationError, source: str) -> str:
    """One line per problem: `FILE: rules.0.when.percent: should be ...` (pydantic's wording, without its URLs;
    a discriminated union's member name is left out of the path)."""
    kinds = {"hashrate_below", "board_fault", "temperature_above", "offline", "no_active_pool", "fan_failure",
             "restart", "fault_light", "pause", "curtail", "power_limit", "webhook", "json", "slack", "telegram",
             "site_hashrate_below", "workers_gone"}
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"] if str(part) not in kinds)
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {where + ': ' if where else ''}{message}")
    return "\n".join(lines)


def _scope_text(config: RulesConfig, index: int) -> str:
    scope = config.rules[index].scope
    parts = [f"{name} {', '.join(values)}" for name, values in
             (("sites", scope.sites), ("makes", scope.makes), ("models", scope.models), ("ips", scope.ips)) if values]
    return "; ".join(parts) or "every miner"


def rules_table(config: RulesConfig) -> Table:
    table = Table(title=f"{len(config.rules)} rules (at most {config.max_actions_per_site_per_hour} miner actions "
                        f"per site per hour{'; everything dry run' if config.dry_run else ''})")
    for column in ("rule", "when", "for", "scope", "actions", "cooldown", "mode"):
        table.add_column(column)
    for index, rule in enumerate(config.rules):
        mode = "off" if not rule.enabled else "dry run" if rule.dry_run or config.dry_run else "acts"
        table.add_row(rule.name, rule.when.describe(), f"{rule.for_minutes:g} min", _scope_text(config, index),
                      ", ".join(a.describe() for a in rule.actions), f"{rule.cooldown_minutes:g} min", mode)
    return table


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _values_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items() if not isinstance(v, list | dict) or v)


def firings_table(found: list[Firing]) -> Table:
    table = Table(title=f"{len(found)} firings, newest first")
    for column in ("fired (UTC)", "rule", "site", "miner", "state", "seen", "actions"):
        table.add_column(column, overflow="fold")
    for item in found:
        results = {r.action: f"{r.state}" + (f" ({r.detail})" if r.detail and r.state != "done" else "")
                   for r in item.results}
        actions = ", ".join(f"{name}: {results[name]}" if name in results else name for name in item.action_names())
        miner = f"{item.ip} {item.model}".strip() if item.ip else "(site)"
        table.add_row(_when(item.fired_at), item.rule, item.site, miner, item.state, _values_text(item.values), actions)
    return table


@rules_app.command("check", short_help="Validate a rules file and print its rules.")
def check(path: Annotated[Path, typer.Argument(help="a rules file, or a sites file with a `rules:` section")]) -> None:
    """Validate a rules file (nothing is sent) and print its rules, alert targets and site events."""
    try:
        config = load_rules(path)
    except ValidationError as exc:
        raise _fail(validation_lines(exc, str(path))) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console = Console()
    console.print(rules_table(config))
    for name, target in config.alerts.items():
        # the kind and where its secret comes from; never the URL or token itself
        source = getattr(target, "url_env", None) or getattr(target, "token_env", None)
        console.print(f"alert target {name}: {target.kind}" + (f" (from ${source})" if source else " (inline)"))
    for event in config.site_events:
        sites = ", ".join(event.sites) or "every site"
        console.print(f"site event {event.name}: {event.kind} on {sites} -> {', '.join(event.notify)}")
    typer.echo(f"{path}: valid ({len(config.rules)} rules, {len(config.alerts)} alert targets, "
               f"{len(config.site_events)} site events)")


@rules_app.command("firings", short_help="The ledger of rule firings and site events.")
def list_firings(
    site: Annotated[str | None, typer.Option(help="only this site's firings")] = None,
    ip: Annotated[str | None, typer.Option(metavar="IP", help="only this miner's firings")] = None,
    rule: Annotated[str | None, typer.Option(metavar="RULE", help="only this rule's firings")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="how many of the latest")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one firing JSON object per line")] = False,
) -> None:
    """The ledger: every rule firing and site event, with the values seen, the actions and their results."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    try:
        found = retry(lambda: firings(client, site=site, ip=ip, limit=limit, rule=rule), url=settings.redis_url,
                      what="reading the rules ledger", budget=settings.redis_retry_seconds)
    except RedisUnavailable as exc:
        raise _fail(str(exc), 1) from None
    finally:
        client.close()
    if as_json:
        for item in found:
            typer.echo(json.dumps(item.model_dump(mode="json", exclude={"options"})))
        return
    Console().print(firings_table(found))


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
