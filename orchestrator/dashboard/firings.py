"""Rule firings for the dashboard, read from the rule engine's ledger (`fleet.rules`)."""

from __future__ import annotations

from typing import Any, Protocol

import redis

from fleet import rules


class FiringSource(Protocol):
    @property
    def available(self) -> bool:
        """False: no rule engine here (the page says so instead of showing an empty list)."""
        ...

    def recent(self, limit: int, ip: str | None) -> list[dict[str, Any]]:
        """The latest firings, newest first (of one miner, when `ip` is given), as JSON-able dicts."""
        ...


class NoFirings:
    available = False

    def recent(self, limit: int, ip: str | None) -> list[dict[str, Any]]:
        return []


def firing_json(item: rules.Firing) -> dict[str, Any]:
    """A firing as the pages show it: what held, what was seen, what was done and how it went."""
    outcome = item.state + (" (dry run)" if item.dry_run and item.state != "dry-run" else "")
    details = [f"{r.action}: {r.state}" + (f" ({r.detail})" if r.detail else "") for r in item.results]
    return {"id": item.id, "kind": item.kind, "at": item.fired_at, "rule": item.rule, "ip": item.ip,
            "site": item.site, "make": item.make, "model": item.model, "condition": item.condition,
            "values": item.values, "action": ", ".join(item.action_names()) or "-",
            "result": outcome + (": " + "; ".join(details) if details else ""), "state": item.state,
            "held_since": item.held_since, "updated": item.updated}


class RuleFirings:
    """The firings ledger of the rule engine."""

    available = True

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def recent(self, limit: int, ip: str | None) -> list[dict[str, Any]]:
        return [firing_json(f) for f in rules.firings(self.redis, ip=ip, limit=limit)]


def default_firings(client: redis.Redis) -> FiringSource:
    return RuleFirings(client)
