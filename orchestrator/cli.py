"""The `asicfleet` command line: scans (in process or distributed), inventories, diffs, workers,
Flower, and the fleet simulator."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import json
import os
import secrets
import select
import signal
import sys
import tempfile
from importlib.metadata import version as package_version
from pathlib import Path
from types import ModuleType
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from asicfleet._errors import InvalidTargetError
from asicfleet.discovery import Identified, MinerFactory, ScanRecord, read_target_file, scan_and_collect
from asicfleet.transport import PortMap
from fleet.logs import LOG_FORMAT_ENV, configure_json_logging
from fleet.loop import run_async
from fleet.plan import DISTRIBUTED_MAX_ADDRESSES, plan_chunks
from fleet.resilience import RedisAuthRefused, RedisUnavailable, check_redis, mask_url
from fleet.scans import ScanProgress, ScanQueueError
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DEFAULT_QUEUE, DiscoveryOptions, check_site_name, site_queue
from fleet.store import ScanInfo, ScanStatus
from orchestrator import friendly, helptext, hints, render, views
from orchestrator.demo import run_demo
from orchestrator.diff import diff_inventories
from orchestrator.local import ClusterStartError, configured_redis, local_cluster
from orchestrator.rollout_cli import register as register_controls
from orchestrator.watch import NoWorkersError, Orchestrator

# plain click help (rich_markup_mode=None): at 80 columns rich's boxes cut option names and defaults
app = typer.Typer(help="Find, read and control Bitcoin ASIC miners.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
stderr = Console(stderr=True)
FORMAT_HELP = "table (default), json (as --json) or csv (as --csv)"


def _fail(message: str, code: int = 2) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # one line each: greppable
    return typer.Exit(code)


def write_out(text: str) -> None:
    """Writes all of `text` to stdout, even when something left the descriptor non-blocking (seen with
    large JSON output into a slow pipe: a plain write lost the tail without an error)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        sys.stdout.write(text)  # not a real file (a test runner's capture)
        return
    sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.set_blocking(fd, True)
    view = memoryview(text.encode())
    while view:
        try:
            view = view[os.write(fd, view[:65536]):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)


class _OutputInterrupts:
    """SIGINT while the results are written: the first Ctrl-C lets the output finish, so no JSON line or CSV
    row is cut (the scan is over, the output is what it was for); a second one stops at once."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: object = None

    def __enter__(self) -> _OutputInterrupts:
        with contextlib.suppress(ValueError):  # not the main thread (an embedding program): leave SIGINT alone
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        stderr.print("interrupt: finishing the output so that no line is cut (Ctrl-C again to stop at once)",
                     soft_wrap=True)

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]


def _emit(records: list[ScanRecord], as_json: bool, as_csv: bool, title: str | None = None) -> bool:
    """Writes the results; True when Ctrl-C came while they were written (the output is still whole)."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.set_blocking(sys.stdout.fileno(), True)  # see write_out
    with _OutputInterrupts() as interrupts:
        try:
            if as_json:
                write_out(render.json_lines(records))
            elif as_csv:
                write_out(render.csv_text(records))
            else:
                console = Console()
                console.print(render.table(records, title, width=console.width))
        except KeyboardInterrupt:  # the second Ctrl-C
            stderr.print("\nstopped: the output was cut short, its last line may be incomplete", soft_wrap=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (`| head`): nothing more to say to it
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            raise typer.Exit(141) from None
    return interrupts.count > 0


def _exit_if_interrupted_while_writing(interrupted: bool, records: list[ScanRecord]) -> None:
    if interrupted:
        stderr.print(f"interrupted after the scan had finished: all {len(records):,} results were written",
                     soft_wrap=True)
        raise typer.Exit(130)


# ----- scan ---------------------------------------------------------------------------------------
async def _scan_in_process(factory: MinerFactory, show_progress: bool, records: list[ScanRecord]) -> None:
    """Scans into `records` (the caller's list: on Ctrl-C it keeps what was found so far)."""
    refused: list[str] = []  # a few addresses where nothing listens, to look for the simulator's remap
    counts = {"miners": 0, "errors": 0}
    progress = Progress(TextColumn("[bold]scanning"), BarColumn(), MofNCompleteColumn(), TextColumn("addresses"),
                        TextColumn("{task.fields[miners]} miners, {task.fields[errors]} errors"),
                        TimeElapsedColumn(), console=stderr, disable=not show_progress)
    with progress:
        task = progress.add_task("scan", total=len(factory.targets), miners=0, errors=0)

        def probed(result: Identified) -> None:
            if result.absent == "refused" and len(refused) < 16:
                refused.append(result.ip)
            counts["miners"] += result.miner is not None
            counts["errors"] += result.error is not None
            progress.update(task, advance=1, miners=counts["miners"], errors=counts["errors"])

        try:
            async for record in scan_and_collect(factory, on_probed=probed):
                records.append(record)
        except asyncio.CancelledError:  # Ctrl-C: the bar is erased once, the caller shows what was found
            progress.live.transient = True
            raise
        finally:
            await factory.aclose()
    summary = factory.last_scan
    if summary is not None and summary.undecided:
        stderr.print(f"[yellow]{summary.undecided} addresses stayed undecided: this machine was too busy to "
                     "hear them out (listed with an error); scan them again when it is quieter[/]")
    if summary is not None and not summary.miners:
        ports_given = bool(factory.settings.ports.overrides)
        seen = not ports_given and bool(refused) and await hints.simulator_remap_seen(refused)
        for line in hints.empty_scan_lines(summary, ports_given, seen, refused, factory.settings.connect_timeout):
            stderr.print(f"[yellow]{escape(line)}[/]", soft_wrap=True)  # a command to copy is never broken
    for (make, model), reporting in (summary.unknown_models.items() if summary is not None else ()):
        miners = f"{reporting} miner" + ("s" if reporting != 1 else "")
        stderr.print(f"[yellow]unknown model {model!r} ({make}, {miners}): not in the catalogue[/]")


@app.command()
def scan(
    targets: Annotated[list[str] | None,
                       typer.Argument(help="CIDRs, a-b ranges, octet patterns (10.0.1-5.*), IPs")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="read targets from a file, one per line")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="addresses to leave out")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one MinerData JSON object per line")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with one row per miner")] = False,
    format_: Annotated[render.OutputFormat | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=20000, help="addresses probed at once")] = 1000,
    connect_timeout: Annotated[float, typer.Option(min=0.05, help="seconds to open a connection")] = 1.0,
    read_timeout: Annotated[float, typer.Option(min=0.1, help="seconds for a reply")] = 5.0,
    identify_timeout: Annotated[float, typer.Option(min=0.1, help="deadline to identify one host")] = 10.0,
    ports: Annotated[str, typer.Option(help="port map for NAT or the simulator, e.g. 80=10080,443=10443")] = "",
    allow_public: Annotated[bool, typer.Option(help="allow targets outside private/loopback space")] = False,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
    distributed: Annotated[bool, typer.Option(help="queue chunks to Celery workers (results in Redis)")] = False,
    site: Annotated[str | None, typer.Option(help="with --distributed: only this site's workers take it")] = None,
    chunk: Annotated[str, typer.Option(help="with --distributed: chunk prefix length (8-32), or auto: the largest "
                                            "chunks (/16 to /24) giving each live worker 16")] = "auto",
    resume: Annotated[str | None, typer.Option(help="re-queue the unfinished chunks of this scan id")] = None,
    local_workers: Annotated[int, typer.Option(min=0, max=64, help="start this many workers (and Redis if "
                                                                     "none answers) for this scan")] = 0,
    wait: Annotated[bool, typer.Option(help="with --distributed: follow the scan to its end")] = True,
    max_addresses: Annotated[int | None, typer.Option(min=1, help="refuse a larger scan (default: 65,536 in "
                                                            "process, 1,048,576 distributed)")] = None,
) -> None:
    """Scan targets and show every miner found: in this process, or spread over Celery workers."""
    try:
        as_json, as_csv = render.output_flags(format_, as_json, as_csv)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        options = DiscoveryOptions(concurrency=concurrency, connect_timeout=connect_timeout,
                                   read_timeout=read_timeout, identify_timeout=identify_timeout, ports=ports,
                                   allow_public=allow_public, max_addresses=max_addresses)
        all_targets = list(targets or []) + (read_target_file(file) if file else [])
        if site is not None:
            check_site_name(site)
        if resume is None and not all_targets:
            raise _fail("give at least one target (or --file)")
        if not (distributed or resume):
            factory = (MinerFactory.from_targets(all_targets, allow_public=allow_public)
                       .with_exclusions(exclude or []).with_concurrent_limit(concurrency)
                       .with_connectivity_timeout_secs(connect_timeout).with_read_timeout_secs(read_timeout)
                       .with_identification_timeout_secs(identify_timeout).with_port_map(PortMap.parse(ports)))
            if max_addresses is not None:
                factory.with_max_addresses(max_addresses)
            factory.check_size()  # refused before anything is sent
            records: list[ScanRecord] = []
            try:
                run_async(_scan_in_process(factory, progress, records))
                interrupted_scan = False
            except KeyboardInterrupt:
                interrupted_scan = True
            records.sort(key=lambda r: r.ip)
            if interrupted_scan:
                _emit(records, as_json, as_csv, title="interrupted: found so far")
                stderr.print(f"interrupted: {render.plural(sum(r.data is not None for r in records), 'miner')} "
                             "found so far are shown above; the rest of the range was not scanned", soft_wrap=True)
                raise typer.Exit(130)
            _exit_if_interrupted_while_writing(_emit(records, as_json, as_csv), records)
            return
        chunk_prefix = _chunk_prefix(chunk)
        if resume is None:  # a bad range is refused before anything is queued
            plan_chunks(all_targets, exclude=exclude, prefix=chunk_prefix or 24, allow_public=allow_public,
                        max_addresses=max_addresses or DISTRIBUTED_MAX_ADDRESSES)
    except ValidationError as exc:
        raise _fail(friendly.validation_message(exc, source="scan")) from None
    except (InvalidTargetError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _distributed_scan(all_targets, exclude or [], site, chunk_prefix, options, resume, local_workers, wait,
                      progress, as_json, as_csv)


def _chunk_prefix(text: str) -> int | None:
    """--chunk: a prefix length, or None for auto (chosen when the scan starts, from the live workers)."""
    if text.strip().lower() == "auto":
        return None
    if not text.strip().isdigit() or not 8 <= int(text) <= 32:
        raise ValueError(f"--chunk {text!r}: give a prefix length from 8 to 32, or auto")
    return int(text)


def _distributed_scan(targets: list[str], exclude: list[str], site: str | None, chunk: int | None,
                      options: DiscoveryOptions, resume: str | None, local_workers: int, wait: bool,
                      show_progress: bool, as_json: bool, as_csv: bool) -> None:
    settings = get_settings()
    if local_workers and not wait:
        raise _fail("--no-wait with --local-workers: the local workers (and their Redis) stop when this command "
                    "ends, so nobody would scan; start `asicfleet workers` elsewhere, or drop --no-wait")
    try:
        with local_cluster(configured_redis(settings), local_workers, site, settings.redis_url) as redis_url:
            if local_workers:
                own = configured_redis(settings) != redis_url
                stderr.print(f"{render.plural(local_workers, 'local worker')} on "
                             + ("a private Redis (stopped afterwards)" if own else "the Redis of ASICFLEET_REDIS_URL"))
            _run_distributed(settings, redis_url, targets, exclude, site, chunk, options, resume, wait,
                             show_progress, as_json, as_csv, local=bool(local_workers))
    except ClusterStartError as exc:
        raise _fail(str(exc)) from None


def _run_distributed(settings: FleetSettings, redis_url: str, targets: list[str], exclude: list[str],
                     site: str | None, chunk: int | None, options: DiscoveryOptions, resume: str | None, wait: bool,
                     show_progress: bool, as_json: bool, as_csv: bool, local: bool = False) -> None:
    try:
        check_redis(redis_url)
    except RedisAuthRefused as exc:
        raise _fail(str(exc)) from None
    except RedisUnavailable as exc:
        raise _fail(f"{exc}: set ASICFLEET_REDIS_URL, or pass --local-workers N to start Redis and workers "
                    "here") from None
    settings = settings.model_copy(update={"redis_url": redis_url})
    orchestrator = Orchestrator(settings)
    if resume is not None:
        try:
            requeued = orchestrator.resume(resume)
        except KeyError as exc:
            raise _fail(str(exc.args[0])) from None
        except RedisUnavailable as exc:
            raise _fail(f"{exc}; scan {resume} was not resumed", code=1) from None
        scan_id = resume
        stderr.print(f"scan {scan_id}: re-queued {len(requeued)} unfinished chunks")
    else:
        try:
            scan_id = orchestrator.start_scan(targets, exclude=exclude, site=site, chunk_prefix=chunk,
                                              options=options)
        except (ScanQueueError, RedisUnavailable) as exc:
            raise _fail(str(exc), code=1) from None
        stderr.print(f"scan {scan_id} queued on {site_queue(site)}")
        _metrics().SCANS_STARTED.labels(origin="cli").inc()
    try:
        _follow_scan(orchestrator, scan_id, wait, show_progress, as_json, as_csv, local)
    except RedisUnavailable as exc:
        raise _fail(f"{exc}. {_left_undone(orchestrator, scan_id)}", code=1) from None


def _left_undone(orchestrator: Orchestrator, scan_id: str, outage: bool = True) -> str:
    """What a scan still had to do when Redis went away (or no worker came), as far as the last read saw it."""
    seen = orchestrator.last_progress
    counts = (f"{seen.chunks_done} of {seen.chunks_total} chunks were done, {seen.miners} miners stored"
              if seen is not None and seen.scan_id == scan_id else "its progress is unknown")
    carry_on = ("The workers carry on and close it when Redis answers again" if outage else
                "Its chunks stay queued: workers that start later (ASICFLEET_NO_WORKER_TIMEOUT_SECONDS=0 waits "
                "for them) scan them and close it")
    return (f"Scan {scan_id} is not finished here: {counts}. {carry_on}; `asicfleet scan --resume {scan_id}` "
            f"re-queues what is left, `asicfleet inventory {scan_id}` shows what was found")


def _site_flag(queue: str) -> str:
    site = queue.removeprefix("asicfleet.site.")
    return f" --site {site}" if site != queue else ""


def _follow_scan(orchestrator: Orchestrator, scan_id: str, wait: bool, show_progress: bool, as_json: bool,
                 as_csv: bool, local: bool) -> None:
    if not wait:
        sys.stdout.write(scan_id + "\n")  # stdout: the id alone, for scripts
        stderr.print(f"follow it: asicfleet scans · results: asicfleet inventory {scan_id} · "
                     f"re-queue unfinished chunks: asicfleet scan --resume {scan_id}", soft_wrap=True)
        return
    view = views.ScanProgressView(scan_id)
    live = show_progress and stderr.is_terminal  # into a file or pipe: the final state once, not every frame
    with Live(view, console=stderr, refresh_per_second=4) if live else contextlib.nullcontext():

        def update(p: ScanProgress) -> None:
            view.progress = p

        def no_worker(queue: str, seconds: float) -> None:
            stderr.print(f"[yellow]no live worker consumes queue {queue} ({seconds:.0f}s)[/]: start one with "
                         f"`asicfleet workers{_site_flag(queue)}`; the scan waits queued"
                         + (f", this command up to {patience:.0f}s" if patience else ""), soft_wrap=True)

        patience = orchestrator.settings.no_worker_timeout_seconds
        try:
            final = orchestrator.watch(scan_id, update, on_no_worker=no_worker, no_worker_timeout=patience or None,
                                       no_worker_warn=min(30.0, patience / 2) if patience else 30.0)
        except KeyboardInterrupt:
            final = None
        except NoWorkersError as exc:
            raise _fail(f"{exc}. {_left_undone(orchestrator, scan_id, outage=False)}", code=1) from None
        view.progress = final or view.progress
    if final is not None:
        _metrics().scan_watched(final)
    if final is None:
        if local:
            stderr.print(f"interrupted: the local workers and their Redis stop now, and scan {scan_id} with them")
        else:
            stderr.print(f"interrupted: scan {scan_id} goes on in the workers; follow it with `asicfleet scans`, "
                         f"results with `asicfleet inventory {scan_id}`", soft_wrap=True)
        raise typer.Exit(130)
    if show_progress and not live:
        stderr.print(view)
    records = render.records_from(orchestrator.inventory(scan_id), orchestrator.errors(scan_id))
    # the caption counts miners and hosts with errors
    interrupted = _emit(records, as_json, as_csv, title=f"scan {scan_id}")
    if final.requeued:
        stderr.print(f"{final.requeued} chunks were re-queued after their worker stopped")
    stderr.print(f"{final.addresses_probed:,}/{final.addresses_total:,} addresses decided"
                 + (f"; [yellow]{final.undecided} undecided[/] (workers too loaded to hear them out; listed with "
                    "an error)" if final.undecided else ", 0 undecided"))
    if final.chunks_failed:
        raise _fail(f"{final.chunks_failed} of {final.chunks_total} chunks failed; "
                    f"`asicfleet scan --resume {scan_id}` re-queues them", code=1)
    _exit_if_interrupted_while_writing(interrupted, records)


# ----- distributed results ------------------------------------------------------------------------
def _orchestrator() -> Orchestrator:
    settings = get_settings()
    try:
        check_redis(settings.redis_url)
    except RedisAuthRefused as exc:
        raise _fail(str(exc)) from None
    except RedisUnavailable as exc:
        raise _fail(f"{exc} (set ASICFLEET_REDIS_URL)") from None
    return Orchestrator(settings)


@app.command()
def inventory(
    scan_id: Annotated[str, typer.Argument(help="the id `asicfleet scan --distributed` printed")],
    as_json: Annotated[bool, typer.Option("--json", help="one MinerData JSON object per line")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with one row per miner")] = False,
    format_: Annotated[render.OutputFormat | None, typer.Option("--format", help=FORMAT_HELP)] = None,
) -> None:
    """Show the inventory a distributed scan stored in Redis, with the scan's true status."""
    try:
        as_json, as_csv = render.output_flags(format_, as_json, as_csv)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    orchestrator = _orchestrator()
    try:
        records = render.records_from(orchestrator.inventory(scan_id), orchestrator.errors(scan_id))
        info = orchestrator.store.scan(scan_id)
        assert info is not None  # inventory() refused an unknown id
        truth = scan_truth(orchestrator, info)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    interrupted = _emit(records, as_json, as_csv, title=f"scan {scan_id}: {truth.status}")
    stderr.print(f"scan {scan_id}: {truth.status}; chunks {truth.chunks_text()}")
    for note in truth.notes():
        stderr.print(f"[yellow]{escape(note)}[/]", soft_wrap=True)
    _exit_if_interrupted_while_writing(interrupted, records)


@app.command()
def diff(
    scan_a: str,
    scan_b: str,
    threshold: Annotated[float, typer.Option(min=0.0, help="hash rate change to report, percent")] = 5.0,
) -> None:
    """Miners that appeared, vanished, or changed model, firmware, pools or hash rate between two scans."""
    orchestrator = _orchestrator()
    try:
        result = diff_inventories(orchestrator.inventory(scan_a), orchestrator.inventory(scan_b),
                                  hashrate_threshold=threshold / 100)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    console = Console()
    for miner in result.appeared:
        console.print(f"[green]+ {miner.ip}[/] {miner.make} {miner.model} ({miner.firmware})")
    for miner in result.vanished:
        console.print(f"[red]- {miner.ip}[/] {miner.make} {miner.model} ({miner.firmware})")
    for change in result.changed:
        console.print(f"[yellow]~ {change.ip}[/] {change.what}: {change.before} -> {change.after}")
    console.print(f"{len(result.appeared)} appeared, {len(result.vanished)} vanished, "
                  f"{len(result.changed)} changes")


def scan_truth(orchestrator: Orchestrator, info: ScanInfo) -> views.ScanTruth:
    """A scan as its chunks and the workers' heartbeats say it is; a scan whose chunks all ended is
    closed on the way (as the worker ending the last chunk, or the watcher, would have)."""
    progress = orchestrator.progress(info.scan_id)
    chunks = orchestrator.store.chunks(info.scan_id, info.total_chunks)
    if progress.finished and info.status is ScanStatus.RUNNING:
        orchestrator.close_if_finished(info.scan_id)
    alive = orchestrator.store.live_workers(c.worker for c in chunks if c.worker)
    return views.ScanTruth.of(info, progress, chunks, alive)


@app.command()
def scans(limit: Annotated[int, typer.Option(min=1, max=1000, help="how many of the latest scans")] = 20) -> None:
    """Recent distributed scans: status from their chunks, stuck chunks named."""
    orchestrator = _orchestrator()
    console = Console()
    truths = [scan_truth(orchestrator, info) for info in orchestrator.scans(limit)]
    console.print(views.scans_view(truths, console.width))


# ----- services -----------------------------------------------------------------------------------
class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


WORKER_APP = "workers.app"  # the workers' Celery app, named for the `celery` command: never imported here


def exec_celery(argv: list[str], env: dict[str, str] | None = None) -> NoReturn:
    """Becomes `celery -A workers.app ARGV...`: the same process (pid, signals, exit code) runs the Celery
    worker or Flower, so the command line starts the workers without importing their code."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "celery", "-A", WORKER_APP, *argv],
              dict(os.environ) if env is None else env)


@app.command()
def workers(
    site: Annotated[str | None, typer.Option(help="take only this site's chunks")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="worker processes (one chunk each)")] = 2,
    name: Annotated[str | None, typer.Option(help="worker name (unique per host)")] = None,
    loglevel: Annotated[str, typer.Option()] = "info",
    beat: Annotated[bool, typer.Option(help="also run Celery beat (scheduled site scans, reaping); the worker "
                                            "then also takes the default queue, where those are planned. In "
                                            "production run `asicfleet beat` on its own instead")] = False,
    metrics_port: Annotated[int | None, typer.Option(min=1, max=65535, envvar="ASICFLEET_WORKER_METRICS_PORT",
                                                     help="serve Prometheus metrics on this port (/metrics)")] = None,
    metrics_address: Annotated[str, typer.Option(envvar="ASICFLEET_WORKER_METRICS_ADDRESS",
                                                 help="listen address of the metrics")] = "127.0.0.1",
    log_format: Annotated[LogFormat, typer.Option(envvar=LOG_FORMAT_ENV, help="json: one JSON object per record, "
                                                  "with scan id, chunk, IP and worker")] = LogFormat.TEXT,
) -> None:
    """Start a Celery worker (broker and Redis from ASICFLEET_REDIS_URL / ASICFLEET_BROKER_URL)."""
    if site is not None:
        try:
            check_site_name(site)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    # container replicas all have the same pid, and those sharing a network namespace the same host name
    # too: a random part keeps their names (and so their heartbeat keys) apart
    worker_name = name or f"asicfleet-{site or 'default'}-{os.getpid()}-{secrets.token_hex(3)}"
    queues = [site_queue(site)] + ([DEFAULT_QUEUE] if beat and site else [])
    argv = ["worker", "--queues", ",".join(queues), "--concurrency", str(concurrency), "--hostname",
            worker_name if "@" in worker_name else f"{worker_name}@%h", "--loglevel", loglevel,
            "--without-gossip", "--without-mingle", "--task-events", "--prefetch-multiplier", "1"]
    if beat:
        schedule = Path(tempfile.gettempdir()) / f"asicfleet-beat-{worker_name}"
        argv += ["--beat", "--schedule", str(schedule)]
    env = dict(os.environ)
    env[LOG_FORMAT_ENV] = log_format.value
    if metrics_port is not None:
        # read by workers.metrics in the worker's main process (a worker signal starts the server)
        env["ASICFLEET_WORKER_METRICS_PORT"] = str(metrics_port)
        env["ASICFLEET_WORKER_METRICS_ADDRESS"] = metrics_address
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="asicfleet-metrics-"))
    exec_celery(argv, env)


@app.command()
def beat(
    schedule: Annotated[Path | None, typer.Option(help="beat's state file (default: in the temporary folder)")
                        ] = None,
    loglevel: Annotated[str, typer.Option()] = "info",
    log_format: Annotated[LogFormat, typer.Option(envvar=LOG_FORMAT_ENV, help="json: one JSON object per record")
                          ] = LogFormat.TEXT,
) -> None:
    """Run Celery beat alone (one per fleet): the sites' recurring scans and the reaper, sent to the default
    queue, where a worker started without --site plans them."""
    state = schedule or Path(tempfile.gettempdir()) / "asicfleet-beat-schedule"
    env = dict(os.environ)
    env[LOG_FORMAT_ENV] = log_format.value
    exec_celery(["beat", "--schedule", str(state), "--loglevel", loglevel], env)


@app.command()
def flower(
    port: Annotated[int, typer.Option(min=1024, max=65535)] = 5555,
    address: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    db: Annotated[Path | None, typer.Option(help="task history file (default: $XDG_DATA_HOME/asicfleet/flower.db, "
                                                 "i.e. ~/.local/share/asicfleet/flower.db)")] = None,
    persistent: Annotated[bool, typer.Option(help="keep the task history across restarts of Flower")] = True,
    allow_control: Annotated[bool, typer.Option("--allow-control", help="let Flower's users shut down, resize, "
                                                "restart workers, revoke or send tasks (refused by default)")] = False,
) -> None:
    """Start Flower on the asicfleet app, with basic auth (ASICFLEET_FLOWER_USER / _PASSWORD), read-only."""
    from orchestrator.flower_service import FlowerConfig, FlowerConfigError, default_history_file, serve

    settings = get_settings()
    password = settings.flower_password.get_secret_value() if settings.flower_password is not None else None
    generated = password is None
    config = FlowerConfig(user=settings.flower_user, port=port,
                          password=secrets.token_urlsafe(12) if password is None else password,
                          address=address, history=(db or default_history_file()) if persistent else None,
                          allow_control=allow_control)
    try:
        config.credential  # noqa: B018 - refused before anything starts or is printed
    except FlowerConfigError as exc:
        raise _fail(str(exc)) from None
    if generated:
        stderr.print(f"ASICFLEET_FLOWER_PASSWORD is not set: this run's password for "
                     f"{settings.flower_user} is {config.password}")
    try:
        code = serve(settings, config, say=lambda line: stderr.print(line, markup=False, highlight=False))
    except (FlowerConfigError, OSError) as exc:
        raise _fail(f"cannot start Flower: {exc}") from None
    raise typer.Exit(code)


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="listen address (beyond loopback only with a login configured)")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    refresh: Annotated[float, typer.Option(min=1, max=3600, help="seconds between a page's refreshes")] = 5.0,
    login_to_read: Annotated[bool, typer.Option("--login-to-read", help="ask for the login before any page "
                                                "(always so beyond loopback)")] = False,
    password_file: Annotated[Path | None, typer.Option(help="file holding the login's password (default: "
                                                       "ASICFLEET_DASHBOARD_PASSWORD[_FILE])")] = None,
) -> None:
    """Serve the web dashboard: fleet totals, the miner table, miner history, rule firings, scans, rollouts."""
    from orchestrator.dashboard import Dashboard, DashboardAuth, DashboardConfigError, serve

    settings = get_settings()
    try:
        policy = DashboardAuth.from_environment(login_to_read=login_to_read, password_file=password_file)
        policy.for_host(host)  # refused before anything starts
        board = Dashboard.from_settings(settings, policy, refresh_seconds=refresh)
    except DashboardConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        check_redis(settings.redis_url)
    except RedisUnavailable as exc:  # served all the same: the pages say so until Redis answers
        stderr.print(f"[yellow]{escape(str(exc))} (set ASICFLEET_REDIS_URL)[/]", soft_wrap=True)
    try:
        code = serve(board, host, port, say=lambda line: stderr.print(line, markup=False, highlight=False))
    except OSError as exc:
        raise _fail(f"cannot serve the dashboard on {host}:{port}: {exc}") from None
    raise typer.Exit(code)

@app.command()
def exporter(
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="listen port (0: any free one)")] = 9108,
) -> None:
    """Serve the monitor's state (ASICFLEET_REDIS_URL) as Prometheus gauges at http://HOST:PORT/metrics."""
    import redis as redis_lib

    from orchestrator.exporter import make_exporter

    settings = get_settings()
    client = redis_lib.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    try:
        server = make_exporter(client, host, port)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stderr.print(f"exporter: serving http://{host}:{server.server_port}/metrics from {mask_url(settings.redis_url)}",
                 markup=False, highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        client.close()


# ----- sim ----------------------------------------------------------------------------------------
def _parse_faults(text: str) -> dict[str, int]:
    from asicfleet.sim import Fault  # the simulator's imports (~0.1 s) only for the commands that serve it

    counts: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, number = item.partition("=")
        try:
            fault = Fault(name.strip())
        except ValueError:
            known = [f.value for f in Fault if f is not Fault.NONE]
            raise ValueError(f"unknown fault {name!r}; known: {known}") from None
        if not number.strip().isdigit():
            raise ValueError(f"fault {item!r} needs a count, e.g. {name}=2")
        counts[fault.value] = int(number)
    return counts


def _parse_weights(text: str) -> dict[str, float] | None:
    weights: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        make, _, number = item.partition("=")
        try:
            weights[make.strip()] = float(number)
        except ValueError:
            raise ValueError(f"weight {item!r} needs a number, e.g. {make.strip()}=3") from None
    return weights or None


@app.command()
def sim(
    subnet: Annotated[str, typer.Option(help="loopback subnet to serve on")] = "127.77.0.0/22",
    count: Annotated[int, typer.Option(min=0, help="number of miners")] = 200,
    mix: Annotated[str, typer.Option(help='firmware families, taken in turn ("all": every family simulated)')
                   ] = "all",
    seed: Annotated[int, typer.Option(help="seed for addresses, models and figures")] = 1,
    inventory: Annotated[Path | None, typer.Option(help="write the fleet as JSON here once all listen")] = None,
    ports: Annotated[str, typer.Option(help="serve standard ports elsewhere, e.g. 80=10080,443=10443")] = "",
    faults: Annotated[str, typer.Option(help="faulty miners, e.g. hung=2,slow=3,malformed=1")] = "",
    slow_seconds: Annotated[float, typer.Option(min=0.0, help="delay of the slow fault")] = 3.0,
    models: Annotated[str, typer.Option(help='catalogued models taken in turn, e.g. "Antminer S21 Pro,M66S"')] = "",
    weights: Annotated[str, typer.Option(help="random models, makes weighted, e.g. AntMiner=5,WhatsMiner=3")] = "",
) -> None:
    """Serve a simulated fleet on loopback addresses until SIGINT/SIGTERM."""
    from asicfleet.sim import SIM_FAMILIES, Fault, SimFleet  # see _parse_faults

    families = sorted(SIM_FAMILIES) if mix.strip() == "all" else mix.split(",")
    try:
        fleet = SimFleet.generate(subnet, count, families, seed=seed,
                                  ports=PortMap.parse(ports) if ports else None, models=models.split(","),
                                  weights=_parse_weights(weights))
        fleet.assign_faults({Fault(k): v for k, v in _parse_faults(faults).items()}, seed=seed)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    for miner in fleet.miners.values():
        miner.slow_seconds = slow_seconds

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            port_map = await fleet.start()
        except OSError as exc:
            raise _fail(f"cannot serve the fleet: {exc}") from None
        if inventory is not None:
            fleet.write_inventory(inventory)
        stderr.print(f"simulator: {len(fleet.miners)} miners on {subnet}"
                     + (f", ports {port_map}" if port_map.overrides else "") + "; Ctrl-C stops")
        await stop.wait()
        await fleet.stop()

    run_async(serve())


@app.command("sim-ip-report")
def sim_ip_report(
    ip: Annotated[str, typer.Argument(help="the simulated miner whose IP-report button is pressed")],
    inventory: Annotated[Path, typer.Option(help="the simulator's inventory (asicfleet sim --inventory)")],
    to: Annotated[str, typer.Option(help="HOST:PORT to send to (default: 127.0.0.1 and the firmware's port)")] = "",
) -> None:
    """Press a simulated miner's IP-report button: its datagram goes out from its own loopback address."""
    from asicfleet.sim import SIM_FAMILIES, send_ip_report  # see _parse_faults

    try:
        entries = {e["ip"]: e for e in json.loads(inventory.read_text())}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(f"cannot read the inventory {inventory}: {exc}") from None
    entry = entries.get(ip)
    if entry is None:
        raise _fail(f"{ip} is not in the inventory {inventory}")
    host, _, port = to.rpartition(":") if to else ("127.0.0.1", "", "")
    if to and not port.isdigit():
        raise _fail(f"--to takes HOST:PORT, not {to!r}")
    try:
        sent = send_ip_report(SIM_FAMILIES[entry["family"]], ip, entry["mac"], host=host,
                              port=int(port) if port else None)
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    stderr.print(f"simulator: {ip} sent its IP report {sent!r}")


@app.command()
def demo(
    subnet: Annotated[str, typer.Option(help="loopback subnet for the simulated fleet (auto: a /22 that no other "
                                             "demo or test run here holds)")] = "auto",
    count: Annotated[int, typer.Option(min=1, help="simulated miners")] = 200,
    faults: Annotated[str, typer.Option(help="faulty miners")] = "hung=1,malformed=1,slow=1,reset=1",
    workers: Annotated[int, typer.Option(min=1, max=16, help="worker processes")] = 2,
    hold: Annotated[float, typer.Option(min=0, help="seconds to keep Flower and the fleet up afterwards "
                                            "(with --dashboard: 0 keeps it up until Ctrl-C)")] = 0,
    dashboard: Annotated[bool, typer.Option("--dashboard", help="watch the fleet in the web dashboard instead: "
                                            "collection, a miner that degrades, the rule that fires")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="with --dashboard: its port (another free one when "
                                      "taken)")] = 8080,
) -> None:
    """The demo: simulator, private Redis, workers and Flower; a distributed scan with live progress."""
    try:
        if dashboard:
            from orchestrator.dashboard_demo import run_dashboard_demo

            code = run_dashboard_demo(subnet, count, faults, workers, hold, port)
        else:
            code = run_demo(subnet, count, faults, workers, hold)
    except RuntimeError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


def _metrics() -> ModuleType:
    """The orchestrator's metrics, imported when first counted: `asicfleet workers` execs Celery, whose
    metrics (workers/metrics.py) would otherwise share this process's files."""
    from orchestrator import metrics

    return metrics


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"asicfleet {package_version('asicfleet')}\n")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False,
          metrics_port: Annotated[int | None, typer.Option(
              min=1, max=65535, envvar="ASICFLEET_ORCHESTRATOR_METRICS_PORT",
              help="serve the orchestrator's Prometheus metrics on this port while the command runs")] = None,
          metrics_address: Annotated[str, typer.Option(help="listen address of the metrics")] = "127.0.0.1",
          log_format: Annotated[LogFormat, typer.Option(envvar=LOG_FORMAT_ENV, help="json: the log records as "
                                                        "JSON lines on stderr")] = LogFormat.TEXT) -> None:
    """Find, read and control Bitcoin ASIC miners."""
    if log_format is LogFormat.JSON:
        configure_json_logging()
    if metrics_port is not None:
        _metrics().serve(metrics_port, metrics_address)


def main() -> None:
    helptext.plain_help(typer.main.get_command(app))(prog_name="asicfleet")


register_controls(app)
__import__("orchestrator.models_cli").models_cli.register(app)  # `asicfleet models`
__import__("orchestrator.rules_cli").rules_cli.register(app)  # `asicfleet rules check | firings`


if __name__ == "__main__":
    main()
