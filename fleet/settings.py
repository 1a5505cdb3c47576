"""Settings for workers and the orchestrator, from the environment (prefix ASICFLEET_) or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class FleetSettings(BaseSettings):
    """`ASICFLEET_REDIS_URL`, `ASICFLEET_BROKER_URL`, ... Secrets stay SecretStr and never reach a task."""

    model_config = SettingsConfigDict(env_prefix="ASICFLEET_", env_file=".env", extra="ignore")

    redis_url: str = Field(default=DEFAULT_REDIS_URL, description="results, leases and scan plans")
    broker_url: str | None = Field(default=None, description="Celery broker; the Redis above when unset "
                                                             "(amqp://guest:guest@127.0.0.1:5672// works too)")
    result_ttl_hours: float = Field(default=168.0, gt=0, description="how long a scan's inventory is kept")
    worker_liveness_seconds: float = Field(default=10.0, gt=1, description="a silent worker is dead after this")
    redis_retry_seconds: float = Field(default=60.0, ge=0, description="how long a Redis (or broker) outage is "
                                                                      "ridden out before giving up")
    sites_file: Path | None = Field(default=None, description="sites, their ranges and scan schedules (YAML/JSON)")
    rules_file: Path | None = Field(default=None, description="rules, alerts and site events (YAML/JSON); "
                                                              "else the sites file's `rules:` section")
    secrets_file: Path | None = Field(default=None, description="miner credentials (YAML/JSON), read by workers")
    collect_interval_seconds: float | None = Field(
        default=None, gt=0, description="every site's collection interval in seconds, overriding the sites "
                                        "file's collect_every_minutes (tests and demos go below a minute)")
    flower_user: str = "admin"
    flower_password: SecretStr | None = None

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def lease_seconds(self) -> float:
        """How long a task's hold on its chunk or batch lasts unless renewed (it renews every third of it)."""
        return max(3.0, 2 * self.worker_liveness_seconds)

    @property
    def result_ttl_seconds(self) -> int:
        return int(self.result_ttl_hours * 3600)


@lru_cache(maxsize=1)
def get_settings() -> FleetSettings:
    return FleetSettings()
