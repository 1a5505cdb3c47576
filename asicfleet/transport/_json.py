"""Tolerant JSON decoding for miner replies.

Several firmwares emit JSON that strict parsers reject: a trailing NUL, a missing comma between
objects (`}{`), stray control characters, `inf`/`nan` literals. Decoding tries the fast strict path
first and repairs only when that fails.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from asicfleet._errors import MinerResponseError

_MISSING_COMMA = re.compile(rb"\}\s*\{")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BARE_NON_FINITE = re.compile(rb"(?<=[:\[,])\s*-?(?:inf|nan)\b", re.IGNORECASE)


def decode_json(raw: bytes) -> Any:
    """Decodes a miner's JSON reply, repairing the known firmware quirks; raises MinerResponseError."""
    body = raw.strip().rstrip(b"\x00").strip()
    if not body:
        raise MinerResponseError("empty reply")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    repaired = _CONTROL.sub(b"", body)
    repaired = _MISSING_COMMA.sub(b"},{", repaired)
    repaired = _BARE_NON_FINITE.sub(b"null", repaired)
    try:
        return json.loads(repaired.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        preview = body[:80].decode("utf-8", errors="replace")
        raise MinerResponseError(f"malformed JSON ({exc.msg} at byte {exc.pos}): {preview!r}") from None
