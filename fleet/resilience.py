"""Living through Redis outages: retry with backoff for a bounded time, then a clear error that names the
host (never the password); and Redis URLs shown with their password masked.

Every Redis call of the orchestrator and the workers that must not be lost (chunk and ledger writes,
leases, heartbeats, the reaper, the watch) goes through `retry` / `aretry`: a restart or a network blip
of up to `ASICFLEET_REDIS_RETRY_SECONDS` (default 60) is ridden out; past it, `RedisUnavailable` says
which Redis did not answer, for how long, and while doing what.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from kombu.exceptions import OperationalError
from redis.exceptions import AuthorizationError

AUTH_ERRORS = (redis.AuthenticationError, AuthorizationError)

T = TypeVar("T")

DEFAULT_RETRY_SECONDS = 60.0
_FIRST_DELAY = 0.1
_MAX_DELAY = 5.0
_SLOW_CALL = 3.0  # seconds: a Redis call this slow counts as an outage for the reapers' grace

# Called with the error's class name on every retry and with "gave_up" when a budget runs out: the
# services' metrics count Redis retries here (workers/metrics.py, orchestrator/metrics.py) without this
# layer knowing of Prometheus.
RETRY_OBSERVERS: list[Callable[[str], None]] = []


def _observe(event: str) -> None:
    for observer in RETRY_OBSERVERS:
        observer(event)


def observe_retries(retried: Callable[[str], object], gave_up: Callable[[], object]) -> None:
    """Has `retried(error class name)` called on every retry and `gave_up()` when a budget runs out."""
    def observer(event: str) -> None:
        if event == "gave_up":
            gave_up()
        else:
            retried(event)

    RETRY_OBSERVERS.append(observer)


def mask_url(url: str) -> str:
    """`redis://:secret@host:6379/0` -> `redis://:***@host:6379/0`; a URL without a password is unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_CREDENTIALS_IN_TEXT = re.compile(r"(\w+://[^:/@\s]*):[^@/\s]*@")


def mask_secrets(text: str) -> str:
    """Every `scheme://user:password@` in `text` (an exception's message, a log line) with the password masked."""
    return _CREDENTIALS_IN_TEXT.sub(r"\1:***@", text)


def redis_location(url: str) -> str:
    """The masked URL without its database path: `redis://:***@host:6379`, as messages name a Redis."""
    masked = mask_url(url)
    parts = urlsplit(masked)
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")) if parts.netloc else masked


class RedisUnavailable(RuntimeError):
    """Redis did not answer within the retry budget (or refused the password); the message names it."""


class RedisAuthRefused(RedisUnavailable):
    """Redis answered but refused the password (or asked for one): retrying cannot help."""


def describe_redis_error(url: str, exc: BaseException) -> str:
    """One line for a user: which Redis, and what went wrong, never the password."""
    where = redis_location(url)
    if isinstance(exc, AUTH_ERRORS) or "NOAUTH" in str(exc) \
            or "WRONGPASS" in str(exc):
        if urlsplit(url).password is None:
            return f"Redis at {where} requires a password: put it in the URL (redis://:PASSWORD@host:port/0)"
        return f"Redis at {where} refused the password"
    return f"no Redis answers at {where} ({type(exc).__name__})"


def check_redis(url: str, timeout: float = 2.0) -> None:
    """Raises RedisAuthRefused / RedisUnavailable with a clear message when Redis at `url` cannot be used."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError as exc:
        raise RedisUnavailable(f"the Redis URL {mask_url(url)} is not valid: {exc}") from None
    try:
        client.ping()
    except AUTH_ERRORS as exc:
        raise RedisAuthRefused(describe_redis_error(url, exc)) from None
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise RedisAuthRefused(describe_redis_error(url, exc)) from None
        raise RedisUnavailable(f"Redis at {redis_location(url)} answered with an error: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        raise RedisUnavailable(describe_redis_error(url, exc)) from None
    finally:
        client.close()


def transient(exc: BaseException) -> bool:
    """An error a retry can cure: no connection, a timeout, Redis still loading its data after a restart,
    or the broker unreachable. A refused password is not."""
    if isinstance(exc, AUTH_ERRORS):
        return False
    if isinstance(exc, redis.ResponseError):
        return "LOADING" in str(exc) or "MASTERDOWN" in str(exc)
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OperationalError | ConnectionError |
                      TimeoutError)


def delays() -> Iterator[float]:
    """0.1 s, 0.2 s, 0.4 s, ... up to 5 s between attempts."""
    delay = _FIRST_DELAY
    while True:
        yield delay
        delay = min(_MAX_DELAY, delay * 2)


class OutageClock:
    """Remembers when this process last failed to reach Redis, so that a reaper does not take workers for
    dead just because their heartbeats lapsed while nobody could reach Redis."""

    def __init__(self) -> None:
        self.last_failure: float | None = None

    def failed(self) -> None:
        self.last_failure = time.monotonic()

    def quiet_for(self) -> float:
        return float("inf") if self.last_failure is None else time.monotonic() - self.last_failure


def _give_up(url: str, what: str, budget: float, exc: BaseException) -> RedisUnavailable:
    if not transient(exc):
        return RedisAuthRefused(f"{describe_redis_error(url, exc)} while {what}")
    return RedisUnavailable(f"Redis at {redis_location(url)} did not answer for {budget:g} s while {what} "
                            f"({type(exc).__name__})")


def retry(fn: Callable[[], T], *, url: str, what: str, budget: float = DEFAULT_RETRY_SECONDS,
          clock: OutageClock | None = None) -> T:
    """Calls `fn` until it succeeds, backing off on transient errors for up to `budget` seconds."""
    deadline = time.monotonic() + budget
    for delay in delays():
        began = time.monotonic()
        try:
            result = fn()
            if clock is not None and time.monotonic() - began > _SLOW_CALL:
                clock.failed()  # Redis hung (a network blip, a paused server): heartbeats may have lapsed
            return result
        except Exception as exc:  # sorted below: only transient errors are retried
            if not transient(exc):
                if isinstance(exc, AUTH_ERRORS):
                    raise _give_up(url, what, budget, exc) from None
                raise
            if clock is not None:
                clock.failed()
            if time.monotonic() + delay > deadline:
                _observe("gave_up")
                raise _give_up(url, what, budget, exc) from None
            _observe(type(exc).__name__)
            time.sleep(delay)
    raise AssertionError("unreachable")


async def aretry(fn: Callable[[], Awaitable[T]], *, url: str, what: str, budget: float = DEFAULT_RETRY_SECONDS,
                 clock: OutageClock | None = None) -> T:
    """`retry` for coroutines: `await aretry(lambda: client.hset(...), url=..., what=...)`."""
    deadline = time.monotonic() + budget
    for delay in delays():
        began = time.monotonic()
        try:
            result = await fn()
            if clock is not None and time.monotonic() - began > _SLOW_CALL:
                clock.failed()
            return result
        except Exception as exc:
            if not transient(exc):
                if isinstance(exc, AUTH_ERRORS):
                    raise _give_up(url, what, budget, exc) from None
                raise
            if clock is not None:
                clock.failed()
            if time.monotonic() + delay > deadline:
                _observe("gave_up")
                raise _give_up(url, what, budget, exc) from None
            _observe(type(exc).__name__)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
