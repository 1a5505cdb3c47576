"""Views designed for an 80-column terminal first: scan ids and IPs are never cut, a table too wide for the
terminal folds into `key: value` blocks, and wider terminals get the table."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from fleet.ledger import RolloutPlan
from fleet.scans import ScanProgress
from fleet.store import ChunkInfo, ChunkState, ScanInfo, ScanStatus
from orchestrator.render import plural

WIDE = 120  # from here on, tables; below, blocks


def elapsed_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# ----- a scan's status: the truth from its chunks and the workers' heartbeats -----------------------
@dataclass
class ScanTruth:
    """What `scans` and `inventory` show for one scan, worked out from its chunks, not just its status
    field (a scan nobody closed still says `running` there)."""

    info: ScanInfo
    progress: ScanProgress
    status: str
    chunk_states: Counter[str]
    stuck: list[ChunkInfo] = field(default_factory=list)  # held by a worker that stopped beating
    waiting: bool = False  # chunks queued and no live worker holds any chunk

    @classmethod
    def of(cls, info: ScanInfo, progress: ScanProgress, chunks: Sequence[ChunkInfo], alive: set[str]) -> ScanTruth:
        states = Counter(c.state.value for c in chunks)
        held = [c for c in chunks if c.state in (ChunkState.RESERVED, ChunkState.RUNNING)]
        stuck = [c for c in held if not c.worker or c.worker not in alive]
        if progress.finished:
            status = ScanStatus.FAILED.value if progress.chunks_failed else ScanStatus.DONE.value
        elif info.status is ScanStatus.FAILED:
            status = ScanStatus.FAILED.value
        else:
            status = "stuck" if stuck and len(stuck) == len(held) else ScanStatus.RUNNING.value
        waiting = (not progress.finished and bool(states.get(ChunkState.QUEUED.value))
                   and len(held) == len(stuck))
        return cls(info, progress, status, states, stuck, waiting)

    def chunks_text(self) -> str:
        p = self.progress
        text = f"{p.chunks_done}/{p.chunks_total} done"
        if p.chunks_failed:
            text += f", {p.chunks_failed} failed"
        others = [f"{n} {state}" for state, n in sorted(self.chunk_states.items())
                  if state not in (ChunkState.DONE.value, ChunkState.FAILED.value)]
        return text + (f" ({', '.join(others)})" if others else "")

    def notes(self) -> list[str]:
        """Lines that say what is wrong and what to do about it."""
        scan_id = self.info.scan_id
        out = []
        for chunk in self.stuck:
            holder = f"worker {chunk.worker}" if chunk.worker else "a worker"
            out.append(f"chunk {chunk.index} ({chunk.label}) is stuck: {holder} stopped while it was "
                       f"{chunk.state.value}")
        if self.stuck or self.waiting:
            out.append(("no live worker holds its queued chunks; " if self.waiting else "")
                       + f"start workers (asicfleet workers), or `asicfleet scan --resume {scan_id}`")
        return out


def scans_view(truths: Sequence[ScanTruth], width: int) -> RenderableType:
    """Recent scans: a table on a wide terminal; below WIDE columns one block per scan."""
    if not truths:
        return Text("no scans in Redis")
    if width >= WIDE:
        out = Table(title="recent scans")
        for heading in ("scan id", "status", "site", "targets", "chunks", "miners", "errors", "started (UTC)"):
            out.add_column(heading, no_wrap=heading in ("scan id", "status", "started (UTC)"),
                           overflow="fold")
        for t in truths:
            out.add_row(t.info.scan_id, t.status, t.info.site or "-", " ".join(t.info.targets), t.chunks_text(),
                        str(t.progress.miners), str(t.progress.errors), _started(t.info))
        notes = [Text(f"{t.info.scan_id}: {n}", style="yellow") for t in truths for n in t.notes()]
        return Group(out, *notes)
    blocks: list[RenderableType] = []
    for t in truths:
        if blocks:
            blocks.append(Text(""))
        blocks.append(key_values(t.info.scan_id, scan_fields(t), style=_style(t.status)))
    return Group(*blocks)


def scan_fields(t: ScanTruth) -> list[tuple[str, str]]:
    p = t.progress
    fields = [("status", t.status), ("site", t.info.site or "-"), ("targets", " ".join(t.info.targets)),
              ("chunks", t.chunks_text()),
              ("addresses", f"{p.addresses_probed:,}/{p.addresses_total:,}"),
              ("found", f"{plural(p.miners, 'miner')}, {plural(p.errors, 'error')}"),
              ("started", _started(t.info) + " UTC")]
    fields += [("note", n) for n in t.notes()]
    return fields


def _started(info: ScanInfo) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.created))


def _style(status: str) -> str:
    return {"done": "green", "failed": "red", "stuck": "yellow", "running": "cyan"}.get(status, "")


def key_values(heading: str, fields: Sequence[tuple[str, str]], style: str = "") -> RenderableType:
    """A heading line (never cut) and `key: value` lines whose values fold under themselves."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column(overflow="fold")
    for key, value in fields:
        grid.add_row(f"  {key}:", escape(value))
    title = Text(heading, style="bold")
    if style:
        title.stylize(style)
    return Group(title, grid)


# ----- the distributed progress: two lines that fit 80 columns -------------------------------------
class ScanProgressView:
    """`scan ID · chunks 3/4 · 12 miners · 0 errors` over `[bar] 768/1,022 addresses · 1,234/s · 0:00:05`."""

    def __init__(self, scan_id: str) -> None:
        self.scan_id = scan_id
        self.progress: ScanProgress | None = None

    def __rich__(self) -> RenderableType:
        p = self.progress
        if p is None:
            return Text(f"scan {self.scan_id}: waiting for the first chunk")
        head = Text.assemble(("scan ", "bold"), (p.scan_id, "bold"),
                             f" · chunks {p.chunks_done}/{p.chunks_total} · {plural(p.miners, 'miner')} · "
                             f"{plural(p.errors, 'error')}")
        tail = (f" {p.addresses_probed:,}/{p.addresses_total:,} addresses · {p.rate:,.0f}/s · "
                f"{elapsed_text(p.elapsed)}")
        grid = Table.grid()
        grid.add_column(width=24)
        grid.add_column(no_wrap=True)
        grid.add_row(ProgressBar(total=max(p.addresses_total, 1), completed=p.addresses_probed, width=24),
                     Text(tail))
        return Group(head, grid)


# ----- a rollout plan ------------------------------------------------------------------------------
def plan_view(plan: RolloutPlan, dry_run: bool, width: int,
              describe: dict[str, str], current: dict[str, str]) -> RenderableType:
    """The plan per miner: a table on a wide terminal, blocks below WIDE columns (a `current -> new`
    column once wrapped to 17 lines per miner at 80 columns)."""
    title = "dry run: nothing will be sent" if dry_run else "rollout plan"
    if width >= WIDE:
        table = Table(title=title)
        for heading in ("IP", "Make", "Model", "Firmware", "Current -> new" if dry_run else "Change", "Skipped"):
            table.add_column(heading, overflow="fold", no_wrap=heading == "IP", min_width=15 if heading == "IP"
                             else None)
        for miner in plan.miners:
            change = describe.get(miner.ip, "")
            if dry_run and miner.ip in describe:
                change = f"{current.get(miner.ip, '')} -> {change}"
            table.add_row(miner.ip, miner.make, miner.model, miner.firmware, change, miner.skip_reason or "")
        return table
    blocks: list[RenderableType] = [Text(title, style="bold")]
    for miner in plan.miners:
        what = " ".join(x for x in (miner.make, miner.model, f"({miner.firmware})" if miner.firmware else "") if x)
        fields: list[tuple[str, str]] = []
        if miner.skip_reason:
            fields.append(("skipped", miner.skip_reason))
        else:
            if dry_run:  # one pool per line: a URL and its worker stay together
                fields.append(("current", current.get(miner.ip, "").replace("; ", "\n")))
            fields.append(("new", describe.get(miner.ip, "").replace("; ", "\n")))
        blocks.append(key_values(f"{miner.ip}  {what}".rstrip(), fields,
                                 style="dim" if miner.skip_reason else ""))
    return Group(*blocks)


def compact_table(title: str | None = None, caption: str | None = None) -> Table:
    """A table with the least padding: more columns fit an 80-column terminal."""
    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
