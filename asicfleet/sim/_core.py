"""The simulated miner: state that controls change and reads show, request counts, and faults.

A family module subclasses `SimMiner`, declares the ports it serves (`services`) and answers
requests in that firmware's real shapes. Faults are applied by the servers (`_servers.py`, and
`_grpc.py` for gRPC), so every family gets every fault mode for free.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import orjson

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import MinerModel as CatalogueModel
from asicfleet.hardware import SimulableModel
from asicfleet.hardware import SimulableModel as MinerModel

if TYPE_CHECKING:  # _grpc builds on this module
    from asicfleet.sim._grpc import GrpcCall, GrpcReply


class Fault(StrEnum):
    NONE = "none"
    SLOW = "slow"  # answers, but only after `slow_seconds`
    HUNG = "hung"  # accepts the connection and never answers
    MALFORMED = "malformed"  # JSON replies are not valid JSON
    TRUNCATED = "truncated"  # replies stop half way and the connection closes
    OVERSIZED = "oversized"  # replies go on for `oversized_bytes`
    AUTH_FAILURE = "auth_failure"  # every login is refused
    RESET = "reset"  # the connection is reset as soon as it is accepted


@dataclass
class HttpRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    port: int  # the standard port (80, 443, ...) this request arrived on, whatever port it was served on
    client: str = ""  # the address the request came from (firmwares that keep a login per client address)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def of_json(cls, value: Any, status: int = 200) -> HttpResponse:
        return cls(status=status, body=orjson.dumps(value))

    @classmethod
    def html(cls, text: str, status: int = 200) -> HttpResponse:
        return cls(status=status, body=text.encode(), content_type="text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> HttpResponse:
        return cls(status=status, headers={"Location": location}, content_type="text/html")

    @property
    def is_json(self) -> bool:
        return "json" in self.content_type


@dataclass(frozen=True)
class Service:
    """One port a simulated miner serves. `kind` picks the server: CGMiner-style RPC (a JSON request,
    a JSON reply, close), HTTP, HTTP over TLS, a framed stream the family reads itself, or gRPC
    (a `grpc.aio` server whose calls go to `handle_grpc`)."""

    port: int
    kind: Literal["rpc", "http", "https", "stream", "grpc"]


@dataclass
class MinerState:
    """What a real miner would remember between requests."""

    ip: str
    model: MinerModel
    mac: str
    serial: str
    hostname: str
    firmware_version: str
    hashrate_ths: float  # current, total
    wattage: float
    power_limit: float
    board_temps: list[float]
    fan_rpms: list[int]
    pools: list[PoolGroup]
    fan: FanConfig = field(default_factory=FanConfig.auto)
    fault_light: bool = False
    mining: bool = True
    boot_time: float = field(default_factory=time.time)
    accepted: int = 0
    rejected: int = 0
    username: str = "root"
    password: str = "root"
    messages: list[tuple[int, str]] = field(default_factory=list)  # (code, text) the firmware reports
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific settings

    @property
    def uptime(self) -> int:
        return max(0, int(time.time() - self.boot_time))

    @property
    def live_hashrate_ths(self) -> float:
        return self.hashrate_ths if self.mining else 0.0

    def board_hashrates(self) -> list[float]:
        """Per-board TH/s that add up exactly to the total."""
        n = max(1, self.model.boards)
        share = round(self.live_hashrate_ths / n, 6)
        return [*([share] * (n - 1)), round(self.live_hashrate_ths - share * (n - 1), 6)]


class SimMiner:
    """Base of the simulated firmwares. Subclasses set the ClassVars and answer requests."""

    family: ClassVar[str]  # the same key as the backend's family
    make: ClassVar[str]
    firmware: ClassVar[str]
    models: ClassVar[tuple[str, ...]]  # model names from the hardware table this firmware runs on
    # other makes whose boards run this same firmware (their models may be named in `models` too)
    other_makes: ClassVar[tuple[str, ...]] = ()
    services: ClassVar[tuple[Service, ...]]
    http_server_header: ClassVar[str | None] = "lighttpd/1.4.32"  # None: the firmware sends no Server header
    # the web server answers `400 Bad Request` and closes as soon as a request cannot begin an HTTP request line
    # (hyper-based servers: a CGMiner RPC `{"command": ...}` sent to their port), instead of waiting for a line
    http_rejects_non_http: ClassVar[bool] = False
    default_password: ClassVar[str] = "root"
    default_username: ClassVar[str] = "root"
    ip_report_port: ClassVar[int | None] = None  # where the IP-report button's datagram goes; None: no button

    def __init__(self, state: MinerState, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self.requests: Counter[str] = Counter()
        self.fault: Fault = Fault.NONE
        self.slow_seconds = 3.0
        self.oversized_bytes = 64 * 1024 * 1024
        self.restart_seconds = 2.0
        self.on_restart: Callable[[float], None] | None = None  # set by the fleet
        self.connections: set[Any] = set()  # open client connections (StreamWriters), dropped at restart
        self.restart_reply_left = asyncio.Event()  # set once the reply to a restart command has been sent

    # ----- bookkeeping ------------------------------------------------------------------------
    def count(self, key: str) -> None:
        self.requests[key] += 1

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def restart(self) -> None:
        """Unreachable for `restart_seconds`, then back with a fresh uptime (as a reboot)."""
        self.state.boot_time = time.time() + self.restart_seconds
        self.restart_reply_left.clear()
        if self.on_restart is not None:
            self.on_restart(self.restart_seconds)

    def inventory(self) -> dict[str, Any]:
        s = self.state
        return {"ip": s.ip, "make": self.make, "model": self.model_name, "firmware": self.firmware,
                "firmware_version": s.firmware_version, "family": self.family,
                "hashrate_ths": round(s.live_hashrate_ths, 6), "wattage": s.wattage, "mac": s.mac,
                "serial": s.serial, "hostname": s.hostname, "fault": self.fault.value}

    @property
    def model_name(self) -> str:
        """The model string this firmware reports (families may differ from the table's name)."""
        return self.state.model.name

    # ----- request handling: overridden by families -------------------------------------------
    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        """Answers one (non-joined) RPC command with a JSON-able reply."""
        return rpc_error(14, "Invalid command")

    @staticmethod
    def decode_rpc_request(request: bytes) -> dict[str, Any] | None:
        """The JSON object of an RPC request, or None when it is not one."""
        try:
            body = orjson.loads(request.rstrip(b"\x00").strip() or b"null")
        except orjson.JSONDecodeError:
            return None
        return body if isinstance(body, dict) else None

    def rpc_invalid_request(self) -> Any:
        """The reply to a request that is not `{"command": ...}` JSON."""
        return rpc_error(23, "Invalid JSON")

    def rpc_join(self, parts: list[str], parameter: Any, port: int) -> dict[str, Any]:
        """A joined `a+b` request, answered the CGMiner way: {"a": [reply], "b": [reply], "id": 1}."""
        joined: dict[str, Any] = {}
        for part in parts:
            self.count(f"{port}:{part}")
            joined[part] = [self.handle_rpc(part, parameter, port)]
        joined["id"] = 1
        return joined

    def rpc_reply(self, request: bytes, port: int) -> bytes:
        """The bytes answering one RPC request (empty: close without a reply, as some firmwares do)."""
        body = self.decode_rpc_request(request)
        if body is None or not isinstance(body.get("command"), str):
            self.count(f"{port}:invalid")
            return orjson.dumps(self.rpc_invalid_request())
        command: str = body["command"]
        parameter = body.get("parameter")
        if "+" in command:
            return orjson.dumps(self.rpc_join(command.split("+"), parameter, port))
        self.count(f"{port}:{command}")
        reply = self.handle_rpc(command, parameter, port)
        return b"" if reply is None else orjson.dumps(reply)

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404, body=b"not found", content_type="text/plain")

    async def handle_stream(self, request: bytes, port: int) -> bytes:
        """Answers one framed request on a `stream` service (bytes in, bytes out)."""
        raise NotImplementedError

    async def read_stream_request(self, reader: Any, port: int) -> bytes | None:
        """Reads one framed request on a `stream` service; None at end of stream."""
        raise NotImplementedError

    async def handle_grpc(self, call: GrpcCall) -> GrpcReply:
        """Answers one call on a `grpc` service; raises `GrpcError` to end it with a status."""
        raise NotImplementedError

    def served(self) -> tuple[Service, ...]:
        """The ports this miner listens on now: `services`, unless its firmware version lacks some of them
        (bound again at each restart, so an upgrade that brings a new API brings its port)."""
        return self.services

    def install_image(self, content: bytes) -> str | None:
        """Checks a simulated firmware image as a miner checks its signature and hardware; installs its
        version (shown after the reboot). Returns the refusal text, or None when accepted."""
        header = read_sim_image(content)
        if header is None:
            return "invalid firmware image"
        if header.get("make") != self.make or self.model_name not in header.get("models", []):
            return f"image is for {header.get('make')} {header.get('models')}, not this {self.model_name}"
        self.state.firmware_version = header["version"]
        return None

    def auth_refused(self) -> bool:
        return self.fault is Fault.AUTH_FAILURE

    @classmethod
    def ip_report_payload(cls, ip: str, mac: str) -> bytes:
        """The datagram this firmware sends when its IP-report button is pressed."""
        raise NotImplementedError(f"{cls.__name__}: this firmware has no IP-report button")

    # ----- fleet construction -----------------------------------------------------------------
    @classmethod
    def makes(cls) -> tuple[str, ...]:
        """Every make this firmware runs on: its own, then `other_makes`."""
        return (cls.make, *cls.other_makes)

    @classmethod
    def simulable(cls, model: CatalogueModel) -> SimulableModel:
        """The catalogued `model` as this firmware is simulated: the catalogue's own shape and figures. A
        firmware whose hardware is assembled per unit (the catalogue rightly has no fixed shape for it)
        fills in the configuration it simulates; a ValidationError names what is still missing."""
        return SimulableModel.of(model)

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        """Whether this firmware can be served as `model` (any catalogued model of its makes, unless narrowed)."""
        return model.make in cls.makes()

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        """A miner of `model` with plausible, seeded figures."""
        ths = round(model.nominal_ths * rng.uniform(0.95, 1.03), 3)
        watts = round(model.nominal_watts * rng.uniform(0.97, 1.03), 1)
        mac = "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))  # locally administered
        serial = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(16))
        octets = ip.split(".")
        state = MinerState(
            ip=ip, model=model, mac=mac.upper(), serial=serial,
            hostname=f"{cls.family}-{octets[-2]}-{octets[-1]}",
            firmware_version=cls.default_firmware_version(rng),
            hashrate_ths=ths, wattage=watts, power_limit=round(model.nominal_watts, 0),
            board_temps=[round(rng.uniform(55, 72), 1) for _ in range(model.boards)],
            fan_rpms=[rng.randrange(3600, 6200, 10) for _ in range(model.fans)],
            pools=[PoolGroup(name="default", quota=1, pools=[
                Pool(url="stratum+tcp://pool.example.com:3333", username=f"farm.{octets[-2]}x{octets[-1]}",
                     password="x"),
                Pool(url="stratum+tcp://backup.example.com:3333", username=f"farm.{octets[-2]}x{octets[-1]}",
                     password="x"),
            ])],
            accepted=rng.randrange(1000, 90000), rejected=rng.randrange(0, 200),
            username=cls.default_username, password=cls.default_password,
        )
        state.boot_time -= rng.randrange(3600, 30 * 86400)
        return cls(state, rng)

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return "1.0.0"


# Simulated firmware images: a header naming the version and the hardware it is built for, then filler.
# (Bitaxe images use the real ESP-IDF app descriptor instead.)
SIM_IMAGE_MAGIC = b"ASICFLEET-SIM-IMAGE\n"


def make_sim_image(version: str, make: str, models: list[str], size: int = 64 * 1024) -> bytes:
    header = orjson.dumps({"version": version, "make": make, "models": models})
    return SIM_IMAGE_MAGIC + header + b"\n" + bytes(range(256)) * max(1, size // 256)


def read_sim_image(content: bytes) -> dict[str, Any] | None:
    if not content.startswith(SIM_IMAGE_MAGIC):
        return None
    line = content[len(SIM_IMAGE_MAGIC):].split(b"\n", 1)[0]
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return header if isinstance(header, dict) and isinstance(header.get("version"), str) else None


def rpc_error(code: int, message: str) -> dict[str, Any]:
    return {"STATUS": [{"STATUS": "E", "When": int(time.time()), "Code": code, "Msg": message,
                        "Description": ""}], "id": 1}


def rpc_status(code: int, message: str, description: str = "") -> list[dict[str, Any]]:
    return [{"STATUS": "S", "When": int(time.time()), "Code": code, "Msg": message, "Description": description}]


# ----- HTTP digest auth (RFC 7616, MD5, qop=auth), as miners' web servers do ------------------------
def digest_challenge(realm: str) -> str:
    return f'Digest realm="{realm}", nonce="{secrets.token_hex(16)}", qop="auth", algorithm=MD5'


def digest_ok(request: HttpRequest, realm: str, username: str, password: str) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("digest "):
        return False
    fields: dict[str, str] = {}
    for item in _split_auth(header[7:]):
        key, _, value = item.partition("=")
        fields[key.strip().lower()] = value.strip().strip('"')
    if fields.get("username") != username or fields.get("realm") != realm:
        return False

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{request.method}:{fields.get('uri', '')}")
    if fields.get("qop"):
        expected = md5(f"{ha1}:{fields.get('nonce')}:{fields.get('nc')}:{fields.get('cnonce')}:{fields['qop']}:{ha2}")
    else:
        expected = md5(f"{ha1}:{fields.get('nonce')}:{ha2}")
    return secrets.compare_digest(expected, fields.get("response", ""))


def _split_auth(text: str) -> list[str]:
    """Splits `a="x, y", b=z` on the commas outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (x.strip() for x in parts) if p]
