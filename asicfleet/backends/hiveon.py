"""Hiveon ASIC firmware (Hive OS's firmware for Antminers): the stock Antminer stack with Hiveon's changes.

It keeps Bitmain's bmminer RPC on 4028 and the digest-protected CGI web API on 80 (realm "antMiner
Configuration", root/root), so it reads like stock Antminer (`antminer.py`, whose parsers and controls this
backend reuses) except where Hiveon differs:

- it names itself in the model string: RPC `version` `VERSION[0].Type` and `get_system_info.cgi`
  `minertype` end in ` HIVEON` (`Antminer S19jPro HIVEON`), which is how pyasic tells it from stock;
- the device row of RPC `stats` carries the power draw, `chain_power` (`"3250.18 W"`), which stock lacks;
- the fault light is `blink.cgi` with the form field `action` = `startBlink` / `stopBlink` (answer codes
  B000 / B100), and `onPageLoaded` reads it back;
- the firmware version is the build's `CompileTime` (RPC `version`), as pyasic reports it.

Identification: an answering RPC decides (` HIVEON` in `version`, else not Hiveon, at no extra cost); when the
RPC is off (refused) and the web shows the stock realm, `get_system_info.cgi` is read once to look for the
marker. An RPC that timed out gets no web check (that host is sick or we are overloaded; a Hiveon miner
whose RPC hangs is then not recognised).

Controls: restart (`reboot.cgi`), pause/resume and work modes (`miner-mode` via `set_miner_conf.cgi`), pools
and fans (`set_miner_conf.cgi`, the whole configuration written back), fault light. No Hiveon version is known
to lack them. Password change, logs, factory reset and firmware upload are not offered: nothing published
shows Hiveon's forms for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import MinerAPIError, MinerError, MinerTimeoutError
from asicfleet._session import Session
from asicfleet.backends._base import Backend, DataField, Probe, Source, at, first_row, parse_text, to_float
from asicfleet.backends.antminer import REALM, AntminerStock, canonical_model, ghs, parse_hashboards, stats_row
from asicfleet.data import BoardData, DeviceInfo
from asicfleet.hardware import Make
from asicfleet.transport import decode_json

MAKE = Make.ANTMINER.value
MARKER = "HIVEON"
MODEL_SUFFIX = " HIVEON"


def names_hiveon(value: Any) -> bool:
    return MARKER in str(value).upper()


def model_from_type(raw: Any) -> str | None:
    """`Antminer S19jPro HIVEON` -> `Antminer S19j Pro` (the table's spelling); None without the marker."""
    text = parse_text(raw)
    if text is None or not text.upper().endswith(MODEL_SUFFIX):
        return None
    name = text[: -len(MODEL_SUFFIX)].strip()
    return canonical_model(name) if name else None


def model_from_version(reply: Mapping[str, Any] | None) -> str | None:
    if reply is None:
        return None
    try:
        return model_from_type(first_row(reply, "VERSION").get("Type"))
    except ValueError:
        return None


def parse_chain_power(row: Mapping[str, Any]) -> float | None:
    """`chain_power` of the stats device row: `"3250.18 W"` (or a bare number) -> watts."""
    value = row.get("chain_power")
    if isinstance(value, str):
        value = value.strip().split(" ", 1)[0]
    return to_float(value)


class Hiveon(AntminerStock):
    family = "hiveon"
    firmware = "Hive"  # pyasic's name (MinerFirmware.HIVEON); pyasic-rs has no Hiveon firmware
    PRIORITY = 46  # ahead of the stock realm it shares

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        **{k: v for k, v in AntminerStock.DATA.items()
           if k not in (DataField.FIRMWARE_VERSION, DataField.CONTROL_BOARD_VERSION, DataField.MESSAGES,
                        DataField.LIGHT_FLASHING)},
        DataField.FIRMWARE_VERSION: at("rpc:version", "VERSION", 0, "CompileTime", parse=parse_text),
        DataField.HASHRATE: [at("rpc:summary", "SUMMARY", 0, "GHS 5s", parse=ghs),
                             at("rpc:stats", parse=lambda r: ghs(stats_row(r).get("GHS 5s")))],
        DataField.WATTAGE: at("rpc:stats", parse=lambda r: parse_chain_power(stats_row(r))),
        DataField.LIGHT_FLASHING: at("web:blink_status", "blink",
                                     parse=lambda v: v if isinstance(v, bool) else None),
    }

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        version = probe.rpc.get("version")
        if isinstance(version, dict):
            return names_hiveon(version)
        web = probe.web
        if isinstance(version, MinerTimeoutError):
            return False  # a sick or overloaded host: no extra request on every stock miner's deadline
        return web is not None and web.status == 401 and f'realm="{REALM.split()[0]}' in \
            web.headers.get("www-authenticate", "")

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        model = model_from_version(probe.rpc_reply("version"))
        cls.remember_challenge(probe)
        if model is None:  # RPC silent: the web's system info names the model (with the marker) too
            reader = cls.probe_reader(probe, DeviceInfo(make=MAKE, model="unknown", firmware=cls.firmware), session)
            try:
                info = await reader.send("web:get_system_info")
            except MinerError:
                return None
            model = model_from_type(info.get("minertype")) if isinstance(info, dict) else None
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = Backend.sources(self, wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware

            def boards(r: Mapping[str, Any]) -> list[BoardData]:
                return parse_hashboards(stats_row(r), hw.board_count, hw.chips_per_board)

            out[DataField.HASHBOARDS] = [at("rpc:stats", parse=boards)]
        return out

    async def send(self, command: str) -> Any:
        if command == "web:blink_status":  # a read that Hiveon serves as a form POST
            return decode_json((await self.web("POST", "blink", data={"action": "onPageLoaded"})).body)
        return await super().send(command)

    # ----- controls ---------------------------------------------------------------------------
    async def set_fault_light(self, on: bool) -> bool:
        reply = await self.web_json("POST", "blink", data={"action": "startBlink" if on else "stopBlink"})
        expected = "B000" if on else "B100"
        if reply.get("code") != expected:
            raise MinerAPIError(f"{self.ip}: blink answered {reply.get('code')!r}, expected {expected}")
        return True

    # what stock offers and nothing published shows Hiveon serving: not claimed
    change_password = Backend.change_password
    read_logs = Backend.read_logs
    factory_reset = Backend.factory_reset
    upgrade_firmware = Backend.upgrade_firmware
