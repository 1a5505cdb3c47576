"""The `asicfleet` command line: scan a range in process, run the fleet simulator."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
import sys
from collections.abc import Coroutine
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from asicfleet._errors import InvalidTargetError
from asicfleet.discovery import Identified, MinerFactory, ScanRecord, read_target_file, scan_and_collect
from asicfleet.transport import PortMap

app = typer.Typer(help="Find, read and control Bitcoin ASIC miners.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
stderr = Console(stderr=True)
ALL_FAMILIES = "antminer,braiins,whatsminer,avalon,bitaxe"


def _fail(message: str) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on uvloop when it is installed (it speeds up many-socket work)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# ----- scan ---------------------------------------------------------------------------------------
def _row(record: ScanRecord) -> dict[str, str]:
    data = record.data
    if data is None:
        return {"ip": str(record.ip), "make": "", "model": "", "firmware": "", "version": "", "hashrate_ths": "",
                "expected_ths": "", "wattage": "", "efficiency": "", "temp_avg": "", "fans": "", "pool": "",
                "uptime_h": "", "errors": record.error or ""}
    active = next((p for g in data.pools for p in g.pools if p.active), None) or next(
        (p for g in data.pools for p in g.pools), None)

    def num(value: float | None, digits: int = 2) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    return {
        "ip": str(record.ip), "make": data.make, "model": data.model, "firmware": data.firmware,
        "version": data.firmware_version or "",
        "hashrate_ths": num(data.hashrate.into_unit("TH/s").value if data.hashrate else None),
        "expected_ths": num(data.expected_hashrate.into_unit("TH/s").value if data.expected_hashrate else None),
        "wattage": num(data.wattage, 0), "efficiency": num(data.efficiency, 1),
        "temp_avg": num(data.average_temperature, 1),
        "fans": " ".join(str(int(f.rpm)) for f in data.fans if f.rpm is not None),
        "pool": f"{active.url or ''} {active.user or ''}".strip() if active else "",
        "uptime_h": num(data.uptime.total_seconds() / 3600 if data.uptime else None, 1),
        "errors": "; ".join(data.errors),
    }


def _table(records: list[ScanRecord]) -> Table:
    table = Table(title=f"{sum(r.data is not None for r in records)} miners", show_lines=False)
    headers = {"ip": "IP", "make": "Make", "model": "Model", "firmware": "Firmware", "version": "Version",
               "hashrate_ths": "TH/s", "expected_ths": "Exp TH/s", "wattage": "W", "efficiency": "J/TH",
               "temp_avg": "Temp °C", "fans": "Fans rpm", "pool": "Pool", "uptime_h": "Up h", "errors": "Errors"}
    for key, title in headers.items():
        table.add_column(title, justify="right" if key in {"hashrate_ths", "expected_ths", "wattage", "efficiency",
                                                            "temp_avg", "uptime_h"} else "left",
                         overflow="fold", style="red" if key == "errors" else None)
    for record in records:
        table.add_row(*_row(record).values())
    return table


async def _scan(factory: MinerFactory, show_progress: bool) -> list[ScanRecord]:
    records: list[ScanRecord] = []
    total = len(factory.targets)
    counts = {"miners": 0, "errors": 0}
    progress = Progress(TextColumn("[bold]scanning"), BarColumn(), MofNCompleteColumn(), TextColumn("addresses"),
                        TextColumn("{task.fields[miners]} miners, {task.fields[errors]} errors"),
                        TimeElapsedColumn(), console=stderr, disable=not show_progress, transient=False)

    with progress:
        task = progress.add_task("scan", total=total, miners=0, errors=0)

        def probed(result: Identified) -> None:
            counts["miners"] += result.miner is not None
            counts["errors"] += result.error is not None
            progress.update(task, advance=1, miners=counts["miners"], errors=counts["errors"])

        try:
            async for record in scan_and_collect(factory, on_probed=probed):
                records.append(record)
        finally:
            await factory.aclose()
    return sorted(records, key=lambda r: r.ip)


@app.command()
def scan(
    targets: Annotated[list[str] | None,
                       typer.Argument(help="CIDRs, a-b ranges, octet patterns (10.0.1-5.*), IPs")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="read targets from a file, one per line")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="addresses to leave out")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one MinerData JSON object per line")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with one row per miner")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=20000, help="addresses probed at once")] = 1000,
    connect_timeout: Annotated[float, typer.Option(min=0.05, help="seconds to open a connection")] = 1.0,
    read_timeout: Annotated[float, typer.Option(min=0.1, help="seconds for a reply")] = 5.0,
    identify_timeout: Annotated[float, typer.Option(min=0.1, help="deadline to identify one host")] = 10.0,
    ports: Annotated[str, typer.Option(help="port map for NAT or the simulator, e.g. 80=10080,443=10443")] = "",
    allow_public: Annotated[bool, typer.Option(help="allow targets outside private/loopback space")] = False,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
) -> None:
    """Scan targets in this process (no broker needed) and show every miner found."""
    if as_json and as_csv:
        raise _fail("choose one of --json and --csv")
    try:
        all_targets = list(targets or []) + (read_target_file(file) if file else [])
        if not all_targets:
            raise _fail("give at least one target (or --file)")
        factory = (MinerFactory.from_targets(all_targets, allow_public=allow_public)
                   .with_exclusions(exclude or []).with_concurrent_limit(concurrency)
                   .with_connectivity_timeout_secs(connect_timeout).with_read_timeout_secs(read_timeout)
                   .with_identification_timeout_secs(identify_timeout).with_port_map(PortMap.parse(ports)))
    except (InvalidTargetError, ValueError) as exc:
        raise _fail(str(exc)) from None
    records = run_async(_scan(factory, progress))
    if as_json:
        for record in records:
            if record.data is not None:
                sys.stdout.write(record.data.model_dump_json() + "\n")
            else:
                sys.stdout.write(record.model_dump_json(exclude={"data"}) + "\n")
    elif as_csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(_row(ScanRecord(ip=IPv4Address("0.0.0.0"))).keys()))
        writer.writeheader()
        writer.writerows(_row(r) for r in records)
        sys.stdout.write(buffer.getvalue())
    else:
        Console().print(_table(records))


# ----- sim ----------------------------------------------------------------------------------------
def _parse_faults(text: str) -> dict[str, int]:
    from asicfleet.sim import Fault

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


@app.command()
def sim(
    subnet: Annotated[str, typer.Option(help="loopback subnet to serve on")] = "127.77.0.0/22",
    count: Annotated[int, typer.Option(min=0, help="number of miners")] = 200,
    mix: Annotated[str, typer.Option(help="firmware families, taken in turn")] = ALL_FAMILIES,
    seed: Annotated[int, typer.Option(help="seed for addresses, models and figures")] = 1,
    inventory: Annotated[Path | None, typer.Option(help="write the fleet as JSON here once all listen")] = None,
    ports: Annotated[str, typer.Option(help="serve standard ports elsewhere, e.g. 80=10080,443=10443")] = "",
    faults: Annotated[str, typer.Option(help="faulty miners, e.g. hung=2,slow=3,malformed=1")] = "",
    slow_seconds: Annotated[float, typer.Option(min=0.0, help="delay of the slow fault")] = 3.0,
) -> None:
    """Serve a simulated fleet on loopback addresses until SIGINT/SIGTERM."""
    from asicfleet.sim import Fault, SimFleet

    try:
        fleet = SimFleet.generate(subnet, count, mix.split(","), seed=seed,
                                  ports=PortMap.parse(ports) if ports else None)
        fault_counts = {Fault(k): v for k, v in _parse_faults(faults).items()}
        fleet.assign_faults(fault_counts, seed=seed)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
