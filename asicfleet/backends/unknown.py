"""Hosts that answer as a miner but match no firmware family: reported as an unknown miner, never dropped and
never passed off as a make they are not.

A host counts as a miner when its RPC port answered `version` with a JSON object (every CGMiner-style
firmware does), or when its web page speaks of mining. A host with only an unrelated web page (a switch, a
camera, a PDU) stays out of the inventory, as before. What it said is kept: the make and model strings it
gave, if any, and the first bytes of its reply, in a warning message of its MinerData. It supports no
control: nothing is known about how to change it safely.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from asicfleet._errors import MinerConnectionError, MinerError
from asicfleet._session import Session
from asicfleet.backends._base import Backend, Probe, first_row, parse_text
from asicfleet.data import DeviceInfo, MessageSeverity, MinerData, MinerMessage

UNKNOWN = "Unknown"
SAID_LIMIT = 200  # characters of the host's own reply kept in the report
# words of a miner's web page (a substring: "miner" covers antminer, whatsminer, cgminer...)
_MINING_WORDS = re.compile(r"miner|hash ?rate|mining|asic", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# where CGMiner-style `version` replies name the product, in the order they are trusted
_MAKE_KEYS = ("Make", "Manufacturer", "Vendor")
_MODEL_KEYS = ("Type", "Model", "PROD", "Product", "Miner")


def said_text(reply: Any) -> str:
    """The first characters of a reply, on one line (what the host said, for a person to read)."""
    text = reply if isinstance(reply, str) else json.dumps(reply, separators=(",", ":"), default=str)
    text = " ".join(text.split())
    return text if len(text) <= SAID_LIMIT else text[: SAID_LIMIT - 1] + "…"


def page_title(page: str) -> str | None:
    match = _TITLE.search(page)
    return parse_text(html.unescape(match[1]).strip()) if match else None


def named_by_version(reply: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of `keys` that the `version` reply's VERSION row (or its top level) fills."""
    try:
        row: Mapping[str, Any] = first_row(reply, "VERSION")
    except ValueError:
        row = {}
    for key in keys:
        for place in (row, reply):
            value = parse_text(place.get(key))
            if value:
                return value
    return None


def said_message(said: str) -> list[MinerMessage]:
    return [MinerMessage(message=f"no firmware family asicfleet knows; the host said: {said}",
                         severity=MessageSeverity.WARNING)]


class UnknownMiner(Backend):
    family = "unknown"
    firmware = UNKNOWN
    PRIORITY: ClassVar[int] = 10_000  # last: only what every family turned down

    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if any(isinstance(reply, MinerError) and not isinstance(reply, MinerConnectionError)
               for reply in probe.rpc.values()):
            return False  # its RPC answered badly: reported as that error ("unrecognised: ..."), not hidden here
        if probe.rpc_reply("version") is not None:
            return True
        return probe.web is not None and bool(_MINING_WORDS.search(probe.web.text))

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        version = probe.rpc_reply("version")
        title = page_title(probe.web.text) if probe.web is not None else None
        if version is not None:
            make = named_by_version(version, _MAKE_KEYS) or UNKNOWN
            model = named_by_version(version, _MODEL_KEYS) or title or UNKNOWN
            probe.learned["said"] = "RPC version: " + said_text(version)
        else:
            assert probe.web is not None  # matches() saw its page
            make, model = UNKNOWN, title or UNKNOWN
            probe.learned["said"] = f"HTTP {probe.web.status}: " + said_text(probe.web.text)
        return DeviceInfo(make=make, model=model, firmware=UNKNOWN)

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        """No command is sent to a host we do not know (DATA is empty): what it said at identification is
        the report."""
        said = str(self.learned.get("said", ""))
        return data.model_copy(update={"messages": said_message(said)}) if said else data
