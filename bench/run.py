"""The benchmark: hubspot-upsert against its peers and its own targets, in one run.

    make bench                          # installs a release build and the peers into bench/.venv
    bench/.venv/bin/python bench/run.py [--quick]

Prints a Markdown report and writes it to bench/RESULTS.md. The fake HubSpot runs in a
process of its own, pinned to the second core; the clients run on the first. Every headline
figure is a ratio against a peer (or the server's floor) measured in the same run.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import async_bench
import bulk
import files
import peers
import shared

HERE = Path(__file__).resolve().parent


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def start_fake(*args: str) -> bulk.Fake:
    fake = bulk.Fake(*args)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(fake.proc.pid, {1})
    return fake


def attempt(what: Callable[[], Any]) -> Any:
    try:
        return what()
    except Exception as e:  # a peer that fails is reported, not fatal
        return f"error: {type(e).__name__}: {str(e)[:80]}"


def measure_single(
    repeats: int, calls: int, per_thread: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sections 1 and 2: each client's latency one call at a time, and calls/s on eight
    threads, against an unlimited fake (median of the repeats)."""
    fake = start_fake()
    single: dict[str, Any] = {}
    threads: dict[str, Any] = {}
    try:
        clients = {**peers.SINGLE, peers.FLOOR: peers.raw_floor}
        for name, make in clients.items():
            runs = [
                attempt(lambda m=make: peers.sequential(m, fake.url, fake.token, calls))
                for _ in range(repeats)
            ]
            good = [r for r in runs if isinstance(r, peers.Latency)]
            single[name] = (
                peers.Latency(
                    statistics.median(r.p50 for r in good),
                    statistics.median(r.p90 for r in good),
                    statistics.median(r.p99 for r in good),
                    statistics.median(r.calls_per_s for r in good),
                )
                if good
                else runs[0]
            )
        for name, make in peers.SINGLE.items():
            runs = [
                attempt(lambda m=make: peers.threaded(m, fake.url, fake.token, per_thread))
                for _ in range(repeats)
            ]
            good = [r for r in runs if isinstance(r, float)]
            threads[name] = statistics.median(good) if good else runs[0]
    finally:
        fake.stop()
    return single, threads


def measure_peer_bulk(quick: bool, bulk_n: int) -> dict[str, Any]:
    """Section 3's peers, each against a fake of its own limited to 100 requests a second."""
    peer_bulk: dict[str, Any] = {}
    for name, run, budget in (
        ("hubspot-api-client, chunks of 100", peers.bulk_official, 3 if quick else 30),
        ("hubspot3, one call per contact", peers.bulk_hubspot3, 2 if quick else 20),
    ):
        limited = start_fake("--rate-limit", "100", "--rate-window", "1")
        try:
            outcome = attempt(lambda r=run, b=budget, f=limited: r(f.url, f.token, bulk_n, b))
        finally:
            stats = limited.stop()
        peer_bulk[name] = (outcome, stats)
    return peer_bulk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of well under a minute")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    quick = args.quick
    logging.getLogger("hubspot_upsert").setLevel(logging.ERROR)
    peers.pin(0)
    repeats = 1 if quick else 3
    calls = 100 if quick else 1000
    per_thread = 20 if quick else 250
    started = time.time()

    # 1 and 2: single upserts, sequential and on eight threads, against an unlimited fake.
    single, threads = measure_single(repeats, calls, per_thread)
    # 3: bulk against a fake limited to 100 requests a second.
    bulk_n = 5_000 if quick else 100_000
    ours_bulk = bulk.ceiling(bulk_n, 100, 1.0)
    peer_bulk = measure_peer_bulk(quick, bulk_n)

    # 7: bulk against a HubSpot that behaves like the real one; 8: the async face.
    latencies, mixes = bulk.real_hubspot(quick)
    concurrent = async_bench.concurrent(100 if quick else 1000, repeats)
    split = async_bench.hand_offs(200 if quick else 2000)
    # 9: processes sharing one limit.
    sharing_tables, sharing_targets = shared.render(shared.measure(quick))
    # 10: the requests each sync mode spends.
    mode_tables, mode_targets = bulk.render_modes(
        bulk.sync_modes(2_000 if quick else 10_000, 600 if quick else 3_000)
    )

    # 11: the sync state.
    state_n = 10_000 if quick else 200_000
    state_lines, state_targets = bulk.render_state(
        bulk.sync_state(state_n, 10_000 if quick else 100_000), state_n
    )

    # 12: associations.
    association_lines, association_targets = bulk.render_associations(
        bulk.associations(2_000 if quick else 10_000, 60 if quick else 300)
    )

    # 13: the command on files of 200,000 rows.
    file_lines, file_targets = files.render(files.measure(quick))

    # 4: cold start; 5 and 6: memory and conversion.
    cold = {
        name: attempt(lambda c=code: peers.cold_start(c, 3 if quick else 7))
        for name, code in peers.COLD.items()
    }
    memory = bulk.memory_in_fresh_process(20_000 if quick else 1_000_000)
    conversion = bulk.conversion(20_000 if quick else 200_000, repeats)

    real_tables, real_targets = bulk.render_real(latencies, mixes)
    figures = Figures(single, threads, ours_bulk, peer_bulk, cold, memory, conversion)
    report = render(quick, figures, started)
    report += render_tail(
        quick,
        real_tables,
        real_targets
        + sharing_targets
        + mode_targets
        + state_targets
        + association_targets
        + file_targets,
        concurrent,
        split,
    )
    report += "\n".join(
        [
            "## 9. Processes sharing one app's limit",
            "",
            "Each process has a client of its own and knows nothing of the others but what "
            "HubSpot's rate-limit headers and 429s tell it.",
            "",
            *sharing_tables,
            "",
            "## 10. Requests per sync mode",
            "",
            "Records of which some contacts exist (the existing ones have no company, which "
            "each record sets), against the in-process fake: the requests one run spends, "
            "and the bound: the definitions, one read per 100 records unless upserting, and "
            "one write per 100 records written (updates by HubSpot's id and creations go in "
            "batches of their own).",
            "",
            *mode_tables,
            "",
            "## 11. The sync state",
            "",
            "SQLite, against the in-process fake: records whose properties HubSpot last "
            "accepted are not sent.",
            "",
            *state_lines,
            "",
            "## 12. Associations",
            "",
            "Against the in-process fake: the companies upserted once each, then the leads "
            "upserted and associated with their companies (looked up by crm_id, 100 a request).",
            "",
            *association_lines,
            "",
            "## 13. The command on files",
            "",
            "`hubspot-upsert FILE --labels` in a process of its own against the fake in "
            "another: HubSpot's own contacts export (label headers, option labels, its "
            "read-only columns) as CSV, the same as Parquet and as an Excel workbook. The peak "
            "RSS is the command's own high-water mark: a file read whole would grow it with "
            "the rows.",
            "",
            *file_lines,
            "",
        ]
    )
    print(report)
    if not quick:
        Path(args.output).write_text(report)


def render_tail(
    quick: bool,
    real_tables: list[str],
    real_targets: list[tuple[str, str, bool]],
    concurrent: dict[str, Any],
    split: dict[str, float],
) -> str:
    """The targets of section 7, then sections 7 and 8."""
    return "\n".join(
        [
            f"| {target} | {figure} | {'yes' if met else 'NO'} |"
            for target, figure, met in real_targets
        ]
        + [
            "",
            "## 7. Bulk against a HubSpot that behaves like the real one",
            "",
            "190 requests per rolling 10 s, answers that take the time shown, 100 records a "
            "batch, the client's defaults. The window allows the first 190 requests at once "
            "and 190 more every 10 s; the time it allows adds one latency. Bad data: the fake "
            "names only the first bad input of a rejected batch.",
            "",
            *real_tables,
            "",
            f"## 8. Async: {100 if quick else 1000} concurrent upserts with asyncio.gather",
            "",
            "The event loop's lag is how late a 1 ms ticker ran meanwhile.",
            "",
            "| client | calls/s | loop lag p99 ms | loop lag max ms |",
            "| --- | --- | --- | --- |",
            *[
                f"| {name} | {r['calls_per_s']:,.0f} | {r['lag_p99_ms']:.2f} | "
                f"{r['lag_max_ms']:.2f} |"
                for name, r in concurrent.items()
            ],
            "",
            f"One sync upsert, p50: {split['call_p50_us']:.0f} us in all; converting its "
            f"record alone {split['convert_p50_us']:.1f} us; a raw socket round trip to the same "
            f"server {split['raw_p50_us']:.0f} us.",
            "",
        ]
    )


def fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def header(quick: bool, started: float) -> list[str]:
    """The report's title, and what ran it where."""
    return [
        "# Benchmark results" + (" (quick smoke run: not for comparison)" if quick else ""),
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
        f"took {time.time() - started:.0f} s",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"Python {platform.python_version()}; clients on core 0, the fake HubSpot on core 1",
        "- versions: "
        + ", ".join(
            f"{d} {version(d)}"
            for d in (
                "hubspot-upsert",
                "hubspot3",
                "hubspot-api-client",
                "hubspot-sdk",
                "requests",
                "httpx",
            )
        ),
        "- server: the project's FakeHubSpot (Python) in its own process; "
        "`bench/run.py` made these figures",
        "",
    ]


def bulk_section(ours_bulk: dict[str, float], peer_bulk: dict[str, Any]) -> list[str]:
    """Section 3: bulk against a fake limited to 100 requests a second."""
    lines = [
        "",
        f"## 3. Bulk: {int(ours_bulk['records']):,} contacts, fake limited to 100 requests/s",
        "",
        "| client | contacts/s | share of the 10,000/s ceiling | failed | 429s / requests |",
        "| --- | --- | --- | --- | --- |",
        f"| hubspot-upsert `create_or_update_many` | {ours_bulk['rate']:,.0f} | "
        f"{ours_bulk['share']:.1%} | {int(ours_bulk['failed'])} | "
        f"{int(ours_bulk['429'])} / {int(ours_bulk['requests'])} |",
    ]
    for name, (outcome, stats) in peer_bulk.items():
        limited = stats["status_counts"].get("429", 0)
        if isinstance(outcome, tuple):
            done, failed, seconds = outcome
            ran = "finished in" if done + failed >= ours_bulk["records"] else "stopped after"
            lines.append(
                f"| {name} ({ran} {seconds:.0f} s) | {done / seconds:,.0f} | "
                f"{done / seconds / 10_000:.1%} | {failed} of {done + failed} tried | "
                f"{limited} / {stats['requests']} |"
            )
        else:
            lines.append(f"| {name} | {outcome} | | | |")
    return lines


@dataclass
class Figures:
    """Sections 1 to 6, as measured."""

    single: dict[str, Any]
    threads: dict[str, Any]
    ours_bulk: dict[str, float]
    peer_bulk: dict[str, Any]
    cold: dict[str, Any]
    memory: dict[str, float]
    conversion: float


def render(quick: bool, f: Figures, started: float) -> str:
    ours = "hubspot-upsert"
    lines = [
        *header(quick, started),
        "## 1. One upsert at a time, one client",
        "",
        "| client | p50 ms | p90 ms | p99 ms | calls/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in f.single.items():
        if isinstance(r, peers.Latency):
            lines.append(
                f"| {name} | {r.p50:.3f} | {r.p90:.3f} | {r.p99:.3f} | {r.calls_per_s:,.0f} |"
            )
        else:
            lines.append(f"| {name} | {r} | | | |")
    lines += [
        "",
        "`hubspot-upsert` sends a sync single upsert on the calling thread; "
        f"`{peers.VIA_IO_THREAD}` is the same client handing it to its I/O thread and "
        "waiting, as async and bulk requests go. It sends a batch upsert of one "
        "(`POST /crm/objects/2026-09/contacts/batch/upsert`), as the server's floor does; "
        "hubspot3, requests and httpx send v1 `createOrUpdate`, the others a batch upsert.",
        "",
        "## 2. Eight threads sharing one client",
        "",
        "| client | calls/s |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {fmt(v, ',.0f')} |" for name, v in f.threads.items()]
    lines += bulk_section(f.ours_bulk, f.peer_bulk)
    lines += [
        "",
        "## 4. Cold start: import and client construction, fresh interpreter (median)",
        "",
        "| client | ms |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {fmt(v, '.1f')} |" for name, v in f.cold.items()]
    lines += [
        "",
        "## 5 and 6. Memory and conversion",
        "",
        f"- peak RSS while bulk-upserting {1_000_000 if not quick else 20_000:,} generated "
        f'records (`keep="failures"`): {f.memory["peak"]:.0f} MB '
        f"(after start-up {f.memory['start']:.0f} MB, at 50% {f.memory.get('50%', 0):.0f} MB)",
        f"- record conversion (dicts to request JSON), one core: {f.conversion:,.0f} records/s",
        "",
        "## Targets (ratios from this run)",
        "",
        "| target | figure | met |",
        "| --- | --- | --- |",
    ]
    lines += targets(ours, f)
    return "\n".join(lines) + "\n"


def targets(ours: str, f: Figures) -> list[str]:
    rows = []

    def row(target: str, figure: str, met: bool) -> None:
        rows.append(f"| {target} | {figure} | {'yes' if met else 'NO'} |")

    def fastest(values: dict[str, Any], key: Callable[[Any], float], best: Callable) -> Any:
        good = {n: v for n, v in values.items() if n != ours and not isinstance(v, str)}
        good.pop(peers.FLOOR, None)
        good.pop(peers.VIA_IO_THREAD, None)
        name = best(good, key=lambda n: key(good[n]))
        return name, good[name]

    if isinstance(f.single.get(ours), peers.Latency):
        mine = f.single[ours].p50
        name, peer = fastest(f.single, lambda r: r.p50, min)
        row(
            "one upsert p50 <= 0.5 x the fastest peer's",
            f"{mine:.3f} ms vs {name} {peer.p50:.3f} ms = {mine / peer.p50:.2f}x",
            mine <= 0.5 * peer.p50,
        )
        floor = f.single.get(peers.FLOOR)
        if isinstance(floor, peers.Latency):
            row(
                "one upsert p50 <= 1.5 x the server's floor",
                f"{mine:.3f} ms vs {floor.p50:.3f} ms = {mine / floor.p50:.2f}x",
                mine <= 1.5 * floor.p50,
            )
    via = f.single.get(peers.VIA_IO_THREAD)
    via_threads = f.threads.get(peers.VIA_IO_THREAD)
    if (
        isinstance(f.single.get(ours), peers.Latency)
        and isinstance(via, peers.Latency)
        and isinstance(f.threads.get(ours), float)
        and isinstance(via_threads, float)
    ):
        mine, threaded = f.single[ours].p50, f.threads[ours]
        row(
            "the calling thread's transport: p50 below, eight threads >= 0.9 x the I/O thread's",
            f"p50 {mine:.3f} vs {via.p50:.3f} ms, {threaded:,.0f} vs {via_threads:,.0f} calls/s",
            mine < via.p50 and threaded >= 0.9 * via_threads,
        )
    if isinstance(f.threads.get(ours), float):
        name, peer = fastest(f.threads, lambda v: v, max)
        row(
            "eight threads >= 2 x the fastest peer's calls/s",
            f"{f.threads[ours]:,.0f} vs {name} {peer:,.0f} = {f.threads[ours] / peer:.1f}x",
            f.threads[ours] >= 2 * peer,
        )
    row(
        "bulk >= 95% of the ceiling, 0 failed, < 1% 429s",
        f"{f.ours_bulk['share']:.1%}, {int(f.ours_bulk['failed'])} failed, "
        f"{f.ours_bulk['429_share']:.2%} 429s",
        f.ours_bulk["share"] >= 0.95
        and f.ours_bulk["failed"] == 0
        and f.ours_bulk["429_share"] < 0.01,
    )
    if isinstance(f.cold.get(ours), float):
        name, peer = fastest(f.cold, lambda v: v, min)
        row(
            "cold start <= 0.5 x the fastest peer's",
            f"{f.cold[ours]:.1f} ms vs {name} {peer:.1f} ms = {f.cold[ours] / peer:.2f}x",
            f.cold[ours] <= 0.5 * peer,
        )
    row("1M-record bulk peak RSS < 300 MB", f"{f.memory['peak']:.0f} MB", f.memory["peak"] < 300)
    row("conversion >= 200k records/s", f"{f.conversion:,.0f}/s", f.conversion >= 200_000)
    return rows


if __name__ == "__main__":
    main()
