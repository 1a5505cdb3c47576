"""Alerts: webhooks on rule firings and on site-level events.

Three payload shapes, one per kind of receiver:

    json      a generic JSON POST: the alert itself ({kind, title, text, site, ip, rule, values, ...})
    slack     Slack-compatible incoming webhook: {"text": ..., "blocks": [...]}
    telegram  Telegram Bot API sendMessage: POST {api_url}/bot{token}/sendMessage {"chat_id", "text"}

Targets are named in the rules file (`alerts:`), and rules and site events refer to them by name, so a
firing in Redis or a task message carries the name only. Webhook URLs and bot tokens are secrets (they
grant posting): give them inline (`url:`) or, better, name the environment variable of the worker that
holds them (`url_env:`, `token_env:`). They are kept as `SecretStr`, never logged, never written to
Redis, and errors from sending name the target, not its URL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

SEND_TIMEOUT = 10.0  # seconds per attempt
SEND_ATTEMPTS = 3  # a receiver that is down for a moment, or answers 5xx, is tried again


class Alert(BaseModel):
    """What happened, in a shape every payload is made from."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["rule_firing", "site_event"]
    title: str
    text: str
    site: str = ""
    ip: str = ""
    rule: str = ""
    firing_id: str = ""
    values: dict[str, Any] = Field(default_factory=dict)
    actions: list[str] = Field(default_factory=list)
    results: list[str] = Field(default_factory=list, description="the firing's actions done before this alert")
    dry_run: bool = False
    at: float = Field(default_factory=time.time, description="unix seconds")


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def _secret(self, value: SecretStr | None, env: str | None, what: str) -> str:
        if value is not None:
            return value.get_secret_value()
        assert env is not None
        found = os.environ.get(env)
        if not found:
            raise AlertError(f"${env} (the {what}) is not set on this worker")
        return found

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        """(URL, JSON body) of the POST for `alert`."""
        raise NotImplementedError


def _one_of(value: object, env: object, what: str) -> None:
    if (value is None) == (env is None):
        raise ValueError(f"give exactly one of {what} and {what}_env")


class JsonTarget(_Target):
    kind: Literal["json"] = "json"
    url: SecretStr | None = None
    url_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")

    @model_validator(mode="after")
    def _source(self) -> JsonTarget:
        _one_of(self.url, self.url_env, "url")
        return self

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        return self._secret(self.url, self.url_env, "webhook URL"), alert.model_dump(mode="json")


class SlackTarget(JsonTarget):
    kind: Literal["slack"] = "slack"  # type: ignore[assignment]

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        url = self._secret(self.url, self.url_env, "webhook URL")
        facts = [f"*{k}*: {v}" for k, v in alert.values.items()] + [f"*done*: {r}" for r in alert.results]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.text}}]
        if facts:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)[:3000]}})
        return url, {"text": f"{alert.title}: {alert.text}", "blocks": blocks}


class TelegramTarget(_Target):
    kind: Literal["telegram"] = "telegram"
    chat_id: str | int
    token: SecretStr | None = None
    token_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    api_url: str = Field(default="https://api.telegram.org", description="the Bot API server (or a local one)")

    @model_validator(mode="after")
    def _source(self) -> TelegramTarget:
        _one_of(self.token, self.token_env, "token")
        return self

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        token = self._secret(self.token, self.token_env, "bot token")
        lines = [alert.title, alert.text, *(f"{k}: {v}" for k, v in alert.values.items()), *alert.results]
        return (f"{self.api_url.rstrip('/')}/bot{token}/sendMessage",
                {"chat_id": self.chat_id, "text": "\n".join(lines)[:4096], "disable_web_page_preview": True})


WebhookTarget = Annotated[JsonTarget | SlackTarget | TelegramTarget, Field(discriminator="kind")]


class _MaskWebhookUrls(logging.Filter):
    """httpx logs every request's URL (`HTTP Request: POST https://hooks.slack.com/services/...`): the URLs
    alerts go to are named instead, so a log never holds a webhook URL or a bot token."""

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[str, str] = {}  # secret URL -> target name

    def filter(self, record: logging.LogRecord) -> bool:
        if self.names and isinstance(record.args, tuple):
            record.args = tuple(f"<webhook {self.names[str(a)]}>" if str(a) in self.names else a for a in record.args)
        return True


_MASK = _MaskWebhookUrls()
logging.getLogger("httpx").addFilter(_MASK)


class AlertError(RuntimeError):
    """An alert could not be sent; the message names the target, never its URL or token."""


async def send_alert(name: str, target: JsonTarget | SlackTarget | TelegramTarget, alert: Alert, *,
                     client: httpx.AsyncClient | None = None, attempts: int = SEND_ATTEMPTS) -> str:
    """POSTs `alert` to `target`; returns a short result (`posted, HTTP 200`) or raises AlertError."""
    url, body = target.request(alert)
    _MASK.names[url] = name
    own = client is None
    http = client or httpx.AsyncClient(timeout=SEND_TIMEOUT, follow_redirects=False)
    problem = ""
    try:
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
            try:
                reply = await http.post(url, json=body)
            except httpx.HTTPError as exc:
                # the exception's text may hold the URL (and so the token): only its type is kept
                problem = f"{type(exc).__name__}"
                continue
            if reply.status_code < 300:
                return f"posted to {name}, HTTP {reply.status_code}"
            problem = f"HTTP {reply.status_code}"
            if reply.status_code < 500 and reply.status_code != 429:
                break  # the receiver refused this payload: sending it again changes nothing
        raise AlertError(f"webhook {name!r} failed: {problem}")
    finally:
        if own:
            await http.aclose()


# ----- site-level events ---------------------------------------------------------------------------
class _SiteEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    sites: list[str] = Field(default_factory=list, description="empty: every site")
    notify: list[str] = Field(min_length=1, description="alert target names")
    cooldown_minutes: float = Field(default=60.0, gt=0)

    def applies_to(self, site: str) -> bool:
        return not self.sites or site in self.sites


class SiteHashrateBelow(_SiteEvent):
    """The site's hash rate (online miners) under `percent` % of what its known miners should make."""

    kind: Literal["site_hashrate_below"] = "site_hashrate_below"
    percent: float = Field(gt=0, le=100)
    for_minutes: float = Field(default=0.0, ge=0)


class WorkersGone(_SiteEvent):
    """No collection round of the site for `minutes`: its workers are gone (or cannot reach Redis)."""

    kind: Literal["workers_gone"] = "workers_gone"
    minutes: float = Field(default=15.0, gt=0)


SiteEvent = Annotated[SiteHashrateBelow | WorkersGone, Field(discriminator="kind")]

__all__ = ["Alert", "AlertError", "JsonTarget", "SiteEvent", "SiteHashrateBelow", "SlackTarget", "TelegramTarget",
           "WebhookTarget", "WorkersGone", "send_alert"]
