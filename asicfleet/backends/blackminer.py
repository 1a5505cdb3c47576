"""blackMiner firmware, as Hammer (D10) and VolcMiner (D1) Scrypt miners run it: two makes, one firmware.

Both makes ship the same Bitmain-derived firmware: lighttpd with HTTP digest auth under the realm
"blackMiner Configuration" in front of every path (an unauthenticated `GET /` answers 401 with it), the
Antminer CGI scripts (`get_system_info`, `get_miner_conf`, `set_miner_conf`, `summary`,
`get_blink_status`, `blink`, `reboot`), and a ccminer-style RPC on port 8359 (not 4028) answering
`version`, `summary`, `stats` and `pools` in the bmminer layout with rates in MH/s. The realm cannot tell
the makes apart: the model string (`get_system_info` `minertype`, e.g. `Hammer D10` or `VolcMiner D1`)
does, read once per host and shared between the two classes here. So one module holds both: the same
parsers and controls, and a class per make for its family key, make name and default login (Hammer
root/root, VolcMiner root/ltc@dog; each tries the other's default second, since the make is only known
after a login).

Controls, as the CGIs have them: restart, fault light, pools, fan mode and work mode (pause is the sleep
work mode), by a read-modify-write of `get_miner_conf` into `set_miner_conf`, inherited from the stock
Antminer backend. No password change, logs, factory reset or firmware upload are supported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import SecretStr

from asicfleet._session import Session
from asicfleet.backends._base import (
    Backend,
    DataField,
    Probe,
    Source,
    at,
    hashrate_from,
    parse_mac,
    parse_text,
    to_float,
)
from asicfleet.backends.antminer import (
    AntminerStock,
    parse_fans,
    parse_hashboards,
    parse_is_mining,
    parse_messages,
    parse_pools,
    parse_tuning_target,
    stats_row,
)
from asicfleet.config import Credentials
from asicfleet.data import BoardData, DeviceInfo, HashRate
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import rpc_call

REALM = "blackMiner Configuration"
RPC_PORT = 8359
HAMMER_PASSWORD = "root"
VOLCMINER_PASSWORD = "ltc@dog"
_SYSTEM_INFO = "blackminer_system_info"  # Probe.learned key: the model read once, shared by both classes


def mhs(value: Any) -> HashRate | None:
    """An MH/s figure (number or numeric string, as the firmware writes them) in TH/s."""
    return hashrate_from(value, "MH/s")


def make_of(model: str) -> Make | None:
    """Which make a `minertype` names; None for a blackMiner build of some other make."""
    upper = model.upper()
    if "HAMMER" in upper:
        return Make.HAMMER
    if "VOLC" in upper:
        return Make.VOLCMINER
    return None


def canonical_model(make: Make, raw: str) -> str:
    known = lookup_model(make, raw)
    return known.name if known is not None else raw.strip()


def parse_boards(stats: Mapping[str, Any], board_count: int | None, chips_per_board: int | None) -> list[BoardData]:
    """The Antminer chain layout (`chain_rateN`, `chain_acnN`, `tempN`); rates are MH/s where no unit is given."""
    row = stats_row(stats)
    return parse_hashboards({**row, "rate_unit": row.get("rate_unit") or "MH"}, board_count, chips_per_board)


def parse_expected(stats: Mapping[str, Any]) -> HashRate | None:
    """`total_rateideal` where a build reports it (in `rate_unit`, MH/s when absent); the catalogue otherwise."""
    row = stats_row(stats)
    unit = row.get("rate_unit") or "MH"
    return hashrate_from(row.get("total_rateideal"), unit if "/" in unit else unit + "/s")


class BlackMiner(AntminerStock):
    """What Hammer and VolcMiner share; the subclasses name the make (no `family` here: not registered)."""

    firmware = "Stock"
    MAKE: ClassVar[Make]
    RPC_BATCHABLE = False  # ccminer answers one command per connection

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at("web:get_system_info", "macaddr", parse=parse_mac),
        DataField.HOSTNAME: at("web:get_system_info", "hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: [at("web:get_system_info", "system_filesystem_version", parse=parse_text),
                                     at("rpc:version", "VERSION", 0, "CompileTime", parse=parse_text)],
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.HASHRATE: [at("rpc:summary", "SUMMARY", 0, "MHS 5s", parse=mhs),
                             at("rpc:stats", parse=lambda r: mhs(stats_row(r).get("MHS 5s")))],
        DataField.EXPECTED_HASHRATE: at("rpc:stats", parse=parse_expected),
        DataField.FANS: at("rpc:stats", parse=lambda r: parse_fans(stats_row(r))),
        DataField.UPTIME: [at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=to_float),
                           at("rpc:stats", parse=lambda r: to_float(stats_row(r).get("Elapsed")))],
        DataField.POOLS: at("rpc:pools", parse=parse_pools),
        DataField.MESSAGES: at("web:summary", "SUMMARY", 0, "status", parse=parse_messages),
        DataField.IS_MINING: at("web:get_miner_conf", parse=parse_is_mining),
        DataField.LIGHT_FLASHING: at("web:get_blink_status", "blink"),
        DataField.TUNING_TARGET: at("web:get_miner_conf", parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board count.
    }

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        web = probe.web
        return web is not None and web.status == 401 and 'realm="blackMiner' in web.headers.get("www-authenticate", "")

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        info = probe.learned.get(_SYSTEM_INFO)
        if not isinstance(info, dict):  # the first of the two classes to look reads it, for both
            reader = cls.probe_reader(probe, DeviceInfo(make=cls.MAKE.value, model="unknown", firmware=cls.firmware),
                                      session)
            reply = await reader.send("web:get_system_info")
            info = reply if isinstance(reply, dict) else {}
            probe.learned[_SYSTEM_INFO] = info
        model = parse_text(info.get("minertype"))
        if model is None or make_of(model) is not cls.MAKE:
            return None
        del probe.learned[_SYSTEM_INFO]
        cls.remember_challenge(probe)
        version = parse_text(info.get("system_filesystem_version"))
        if version is not None:
            probe.learned["firmware_version"] = version
        return cls.device_info(cls.MAKE.value, canonical_model(cls.MAKE, model), cls.firmware)

    def credential_candidates(self) -> list[Credentials]:
        """The make's default first, then the sibling make's: identification logs in before the make is known."""
        own = super().credential_candidates()
        others = [Credentials(username="root", password=SecretStr(p)) for p in (HAMMER_PASSWORD, VOLCMINER_PASSWORD)]
        seen = {(c.username, c.password.get_secret_value()) for c in own}
        return own + [c for c in others if (c.username, c.password.get_secret_value()) not in seen]

    # ----- collecting and sending ---------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = Backend.sources(self, wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware
            out[DataField.HASHBOARDS] = [at("rpc:stats", parse=lambda r: parse_boards(
                r, hw.board_count, hw.chips_per_board))]
        return out

    async def rpc(self, command: str, parameter: str | int | None = None) -> dict[str, Any]:
        return await rpc_call(self.ip, command, parameter, settings=self.session.settings, port=RPC_PORT)

    # not supported on this firmware here: back to the base's refusal, so supports_* is false
    change_password = Backend.change_password
    read_logs = Backend.read_logs
    factory_reset = Backend.factory_reset
    upgrade_firmware = Backend.upgrade_firmware


class Hammer(BlackMiner):
    family = "hammer"
    MAKE = Make.HAMMER
    PRIORITY = 140  # its own realm: no overlap with the Antminer family's signals
    DEFAULT_CREDENTIALS = (("root", HAMMER_PASSWORD),)


class VolcMiner(BlackMiner):
    family = "volcminer"
    MAKE = Make.VOLCMINER
    PRIORITY = 141  # after Hammer, which reads the shared model string first
    DEFAULT_CREDENTIALS = (("root", VOLCMINER_PASSWORD),)
