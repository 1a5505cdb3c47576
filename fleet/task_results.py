"""What a chunk or rollout batch task returns: the counts an operator needs, a one-line summary first (the
problem counts leading), and an `outcome` ("ok" or "warning") that says whether anything in it went wrong.

The workers build these; Celery sends them (as their repr) in the task-succeeded event, which is all Flower
sees of a task's result (results are not kept in a backend: they live in Redis in the documented shape).
`asicfleet flower` shows the summary in its list and a chunk or batch whose outcome is "warning" in the
state WARNING (`outcome_of` reads it back from the repr).
"""

from __future__ import annotations

import ast
from typing import Any

OK = "ok"
WARNING = "warning"
_MAX_REPR = 8192  # a result repr longer than this is not one of ours


def chunk_result(*, scan_id: str, chunk: int, label: str, probed: int, found: int, errors: int, undecided: int,
                 identify_seconds: float, collect_seconds: float) -> dict[str, Any]:
    """A scanned chunk: hosts that answered badly (`errors`) or could not be decided make it a warning."""
    outcome = WARNING if errors or undecided else OK
    # Flower's list shows about 50 characters of a result: the counts that tell trouble come first
    summary = (f"errors {errors}, undecided {undecided}, found {found}, probed {probed}; "
               f"identify {identify_seconds:.1f} s, collect {collect_seconds:.1f} s; {label}")
    return {"summary": summary, "outcome": outcome, "scan_id": scan_id, "chunk": chunk, "label": label,
            "probed": probed, "found": found, "errors": errors, "undecided": undecided,
            "identify_seconds": round(identify_seconds, 3), "collect_seconds": round(collect_seconds, 3)}


def batch_result(*, rollout_id: str, batch: int, control: str, miners: int, verified: int, failed: int,
                 unverified: int, skipped: int, pending: int = 0) -> dict[str, Any]:
    """A rollout batch: a miner that failed, whose change could not be read back, or whose change may be
    written but not applied (pending), makes it a warning."""
    outcome = WARNING if failed or unverified or pending else OK
    pending_text = f"pending {pending}, " if pending else ""
    summary = (f"failed {failed}, unverified {unverified}, {pending_text}verified {verified}, skipped {skipped}; "
               f"{miners} miners, {control}")
    return {"summary": summary, "outcome": outcome, "rollout_id": rollout_id, "batch": batch, "control": control,
            "miners": miners, "verified": verified, "failed": failed, "unverified": unverified, "skipped": skipped,
            "pending": pending}


def parse_result(text: Any) -> dict[str, Any] | None:
    """A task result as Flower holds it (the repr of the returned dict) back as a dict; None if it is not one."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.startswith("{") or len(text) > _MAX_REPR:
        return None
    try:
        value = ast.literal_eval(text)  # literals only: a repr of str/int/float/dict, never code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def outcome_of(text: Any) -> str | None:
    """"ok" or "warning" for one of our chunk or batch results; None for anything else."""
    parsed = parse_result(text)
    outcome = parsed.get("outcome") if parsed else None
    return outcome if outcome in (OK, WARNING) else None


def summary_of(text: Any) -> str | None:
    parsed = parse_result(text)
    summary = parsed.get("summary") if parsed else None
    return summary if isinstance(summary, str) else None
