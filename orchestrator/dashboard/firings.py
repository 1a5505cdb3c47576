"""Rule firings for the dashboard: read from the rule engine's ledger when this install has one."""

from __future__ import annotations

from typing import Any, Protocol

import redis


class FiringSource(Protocol):
    available: bool  # False: no rule engine here (the page says so instead of showing an empty list)

    def recent(self, limit: int, ip: str | None) -> list[dict[str, Any]]:
        """The latest firings, newest first (of one miner, when `ip` is given), as JSON-able dicts."""
        ...


class NoFirings:
    available = False

    def recent(self, limit: int, ip: str | None) -> list[dict[str, Any]]:
        return []


def default_firings(client: redis.Redis) -> FiringSource:
    return NoFirings()
