"""Bulk upsert figures: conversion rate, share of the rate-limit ceiling reached at zero and at
real latency, requests spent on bad data, memory.

    python bench/bulk.py                 # the full run (about eight minutes)
    python bench/bulk.py --quick         # a smoke run of half a minute

The fake HubSpot runs in a process of its own (python -m hubspot_upsert.testing), so the
client's process measures only the client. Figures are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hubspot_upsert import HubSpot, __version__


class Fake:
    """A FakeHubSpot in a subprocess."""

    def __init__(self, *args: str) -> None:
        # stderr goes to a file: nothing reads a pipe while the run goes on.
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hubspot_upsert.testing", "--no-record", *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split(" at ")[1].strip()
        self.token = self.proc.stdout.readline().split(": ")[1].strip()

    def stop(self) -> dict[str, Any]:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.seek(0)
        lines = [x for x in self.log.read().splitlines() if x.startswith("stats: ")]
        if not lines:
            raise RuntimeError("the fake HubSpot did not report its figures")
        return dict(json.loads(lines[-1][len("stats: ") :]))


def records(n: int, prefix: str = "p") -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "email": f"{prefix}{i}@example.com",
            "firstname": f"First{i}",
            "lastname": "Last",
            "company": "Example Ltd",
            "annualrevenue": i * 10.5,
            "lifecyclestage": "lead",
        }


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ru_maxrss: Linux carries that over from the parent
    through fork and exec, so it would report the benchmark's own peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def conversion(n: int, repeats: int) -> float:
    from hubspot_upsert._native import Converter

    converter = Converter()
    data = list(records(n))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        ok, refused, _ = converter.convert_many(data, email_field="email")
        rates.append(n / (time.perf_counter() - start))
        assert (ok, refused) == (n, 0)
    return statistics.median(rates)


def timed_run(n: int, prefix: str, *fake_args: str) -> tuple[Any, float, dict[str, Any]]:
    """``n`` generated records into a fake of its own started with ``fake_args``, with the
    client's defaults: the result, the seconds it took, and the fake's counts."""
    fake = Fake(*fake_args)
    try:
        hs = HubSpot(fake.token, base_url=fake.url)
        start = time.perf_counter()
        result = hs.create_or_update_many(records(n, prefix), keep="failures")
        seconds = time.perf_counter() - start
    finally:
        stats = fake.stop()
    return result, seconds, stats


def ceiling(n: int, rate: int, window: float) -> dict[str, float]:
    limit = ("--rate-limit", str(rate), "--rate-window", str(window))
    result, seconds, stats = timed_run(n, "c", *limit)
    requests = stats["requests"]
    limited = stats["status_counts"].get("429", 0)
    ceiling_rate = rate / window * 100
    return {
        "records": n,
        "seconds": seconds,
        "rate": n / seconds,
        "ceiling": ceiling_rate,
        "share": n / seconds / ceiling_rate,
        "failed": result.failed,
        "requests": requests,
        "429": limited,
        "429_share": limited / max(requests, 1),
    }


#: The network's share of a round trip to HubSpot (a light read's whole answer time).
NETWORK = 0.03


def at_latency(n: int, latency: float, limit: int = 190, window: float = 10.0) -> dict[str, float]:
    """A run with the defaults against HubSpot's limit and writes that take ``latency`` s to
    answer once HubSpot has counted them on receipt, beside what the rolling window allows:
    the first window's requests at once (the definitions read among them), then one window
    per ``limit`` requests, plus the last answer's time."""
    limits = ("--rate-limit", str(limit), "--rate-window", str(window))
    timing = ("--latency", str(latency), "--network-latency", str(NETWORK))
    result, seconds, stats = timed_run(n, "l", *limits, *timing)
    requests = -(-n // 100) + 1
    ideal = (-(-requests // limit) - 1) * window + latency + NETWORK
    limited = stats["status_counts"].get("429", 0)
    return {
        "records": n,
        "latency": latency,
        "limit": f"{limit} / {window:g} s",
        "goal": 1.05 if window >= 10 else 1.15,
        "seconds": seconds,
        "ideal": ideal,
        "ratio": seconds / ideal,
        "failed": result.failed,
        "requests": stats["requests"],
        "429": limited,
        "429_share": limited / max(stats["requests"], 1),
        "peak_in_flight": stats["peak_in_flight"],
    }


#: Bad-data mixes, each a function of the record's position, and what it did before.
MIXES = {
    "a column the portal lacks, on every record": (
        lambda i, r: {**r, "shoe_size": "44"},
        lambda good, bad: 8,
        "19,900 requests, nothing landed",
    ),
    "10% bad enumeration values": (
        lambda i, r: {**r, "lifecyclestage": "bogus"} if i % 10 == 3 else r,
        lambda good, bad: -(-good // 100) + 7,
        "8,300 requests",
    ),
    "1% addresses HubSpot refuses": (
        lambda i, r: {**r, "email": f"x{i}@example.ik"} if i % 100 == 42 else r,
        lambda good, bad: -(-good // 100) + 2 * bad + 4,
        "1,300 requests",
    ),
}


def required_rule(n: int) -> dict[str, Any]:
    """``n`` records of which half lack ``firstname``, which the portal's rule (2026-09)
    requires on new contacts: the upserts and reads spent."""
    fake = Fake("--required-on-create", "firstname")
    try:
        hs = HubSpot(fake.token, base_url=fake.url)
        rows = [
            r if i % 2 else {k: v for k, v in r.items() if k != "firstname"}
            for i, r in enumerate(records(n, "q"))
        ]
        result = hs.create_or_update_many(rows, keep="failures")
    finally:
        stats = fake.stop()
    good = result.created + result.updated
    lacking = n // 2
    return {
        "records": n,
        "requests": stats["requests"],
        "good": good,
        "failed": result.failed,
        # The definitions, the batches that land, the one refused, the existence reads.
        "bound": 1 + -(-good // 100) + 1 + -(-lacking // 100) + 2,
        "codes": sorted({str(f.code) for f in result.failures}),
    }


SYNC_MODES: dict[str, dict[str, Any]] = {
    "upsert (default)": {},
    "update only": {"mode": "update"},
    "create only": {"mode": "create"},
    "fill empty fields": {"fill_empty": True},
    "update only, by crm_id": {"mode": "update", "id_property": "crm_id"},
}


def sync_modes(n: int, existing: int) -> list[dict[str, Any]]:
    """Requests spent on ``n`` records of which ``existing`` contacts exist, in each sync mode;
    with the bound the README states (definitions, ceil(n/100) reads unless upserting, and a
    write per 100 records written)."""
    from hubspot_upsert.testing import FakeHubSpot

    rows = []
    for name, options in SYNC_MODES.items():
        with FakeHubSpot(unique_properties=["crm_id"], record_requests=False) as fake:
            hs = HubSpot(fake.token, base_url=fake.url)
            # The contacts that exist have no company yet: filling empty fields writes it.
            seed = [
                {**r, "crm_id": f"k{i}", "company": None}
                for i, r in enumerate(records(existing, "s"))
            ]
            hs.create_or_update_many(seed, keep="failures").raise_for_errors()
            before = fake.request_count
            key = "crm_id" if options.get("id_property") == "crm_id" else "email"
            data = [
                {**r, "email": f"s{i}@example.com", "crm_id": f"k{i}"}
                for i, r in enumerate(records(n, "s"))
            ]
            if key == "crm_id":
                data = [{k: v for k, v in r.items() if k != "email"} for r in data]
            result = HubSpot(fake.token, base_url=fake.url).create_or_update_many(
                data, keep="failures", **options
            )
            spent = fake.request_count - before
        # Upserts go 100 a batch whatever they do; after reads, updates (by HubSpot's id)
        # and creations (upserts) go in batches of their own.
        bound = 1 + (
            -(-(n - result.skipped) // 100)
            if not options
            else -(-n // 100) + -(-result.created // 100) + -(-result.updated // 100)
        )
        rows.append(
            {
                "mode": name,
                "records": n,
                "existing": existing,
                "requests": spent,
                "bound": bound,
                "created": result.created,
                "updated": result.updated,
                "skipped": result.skipped,
                "failed": result.failed,
            }
        )
    return rows


def sync_state(n: int, unchanged_n: int) -> dict[str, float]:
    """The sync state (SQLite): a first run of ``n`` records, then a nightly run with 1%
    changed by a new client (its requests, against the bound ceil(changed/100) + 2: the
    portal's id and the definitions); the time the state adds to a run of ``unchanged_n``
    records that are all unchanged, against converting and checking them alone (wall and CPU
    time, one process); and the journal's cost per 100,000 records written."""
    from hubspot_upsert._native import BulkOptions, Converter
    from hubspot_upsert.testing import FakeHubSpot

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "sync.db"
        with FakeHubSpot(record_requests=False) as fake:
            start = time.perf_counter()
            HubSpot(fake.token, base_url=fake.url).create_or_update_many(
                records(n), state=state, keep="failures"
            ).raise_for_errors()
            figures["first_s"] = time.perf_counter() - start
            changed = n // 100
            nightly = (
                {**r, "firstname": "Changed"} if i % 100 == 0 else r
                for i, r in enumerate(records(n))
            )
            before = fake.request_count
            start = time.perf_counter()
            result = HubSpot(fake.token, base_url=fake.url).create_or_update_many(
                nightly, state=state, keep="failures"
            )
            figures["nightly_s"] = time.perf_counter() - start
            figures["nightly_requests"] = fake.request_count - before
            figures["nightly_bound"] = -(-changed // 100) + 2
            figures["nightly_updated"] = result.updated
            figures["nightly_unchanged"] = result.unchanged

            # All unchanged, against conversion and checks alone, best of three.
            data = list(records(unchanged_n))
            hs = HubSpot(fake.token, base_url=fake.url)
            hs.create_or_update_many(data, state=state, keep="failures")
            converter = Converter()
            base_wall, base_cpu, state_wall, state_cpu = [], [], [], []
            for _ in range(3):
                w, c = time.perf_counter(), time.process_time()
                converter.check_many(data, BulkOptions())
                base_wall.append(time.perf_counter() - w)
                base_cpu.append(time.process_time() - c)
                w, c = time.perf_counter(), time.process_time()
                again = hs.create_or_update_many(data, state=state, keep="failures")
                state_wall.append(time.perf_counter() - w)
                state_cpu.append(time.process_time() - c)
                assert again.unchanged == unchanged_n
            scale = 100_000 / unchanged_n
            figures["unchanged_run_s"] = min(state_wall) * scale
            figures["convert_only_s"] = min(base_wall) * scale
            figures["added_wall_s"] = (min(state_wall) - min(base_wall)) * scale
            figures["added_cpu_s"] = (min(state_cpu) - min(base_cpu)) * scale

        # The journal: the same writes with and without a state, each on a fresh fake in a
        # process of its own (an in-process fake would compete with the run for the GIL).
        timed = {}
        for name in ("without", "with"):
            server = Fake()
            try:
                hs = HubSpot(server.token, base_url=server.url)
                where = Path(folder) / "journal.db" if name == "with" else None
                start = time.perf_counter()
                hs.create_or_update_many(records(unchanged_n, "j"), state=where, keep="failures")
                timed[name] = time.perf_counter() - start
            finally:
                server.stop()
        figures["journal_s_per_100k"] = (timed["with"] - timed["without"]) * scale
        figures["written_s_per_100k"] = timed["without"] * scale
    return figures


def render_state(f: dict[str, float], n: int) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """Section 11's lines, and its ``(target, figure, met)`` rows."""
    lines = [
        f"- first run of {n:,} records with a state: {f['first_s']:.1f} s",
        f"- the nightly run, 1% changed, by a new client: {f['nightly_requests']:.0f} requests "
        f"(bound {f['nightly_bound']:.0f}: the changed records' batches, the portal's id and "
        f"the definitions), {f['nightly_updated']:,.0f} updated, "
        f"{f['nightly_unchanged']:,.0f} unchanged, {f['nightly_s']:.2f} s",
        f"- 100,000 unchanged records: {f['unchanged_run_s']:.2f} s a run; converting and "
        f"checking them alone {f['convert_only_s']:.2f} s; the state adds "
        f"{f['added_wall_s']:.2f} s ({f['added_cpu_s']:.2f} s of CPU): fingerprints, and the "
        "state read 100 ids a query",
        f"- the journal per 100,000 records written (two commits per batch, SQLite WAL): "
        f"{f['journal_s_per_100k']:+.2f} s on a run of {f['written_s_per_100k']:.1f} s",
    ]
    targets = [
        (
            "nightly run, 1% changed: requests <= ceil(changed/100) + 2",
            f"{f['nightly_requests']:.0f} <= {f['nightly_bound']:.0f}",
            f["nightly_requests"] <= f["nightly_bound"],
        ),
        (
            "time the state adds per 100,000 unchanged records < 2 s",
            f"{f['added_wall_s']:.2f} s",
            f["added_wall_s"] < 2.0,
        ),
    ]
    return lines, targets


def associations(n: int, companies: int) -> dict[str, Any]:
    """``n`` leads of ``companies`` companies, against the in-process fake: the companies
    upserted once each, then the leads upserted and associated with them; the requests each
    step spent, against the minimum ceil(companies/100) + ceil(contacts/100) +
    ceil(associations/100)."""
    from hubspot_upsert.testing import FakeHubSpot

    with FakeHubSpot(objects={"companies": {"unique": ["crm_id"]}}) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        leads = [
            {"email": f"lead{i}@example.com", "firstname": "L", "company_id": f"c{i % companies}"}
            for i in range(n)
        ]
        firms = [{"crm_id": f"c{i}", "name": f"Company {i}"} for i in range(companies)]
        start = time.perf_counter()
        hs.objects("companies").create_or_update_many(firms, id_property="crm_id")
        result = hs.create_or_update_many(
            leads, associate={"companies": ("company_id", "crm_id")}, keep="failures"
        )
        seconds = time.perf_counter() - start
        paths = [r.path for r in fake.requests]
    assert result.associated == n and not result.not_associated
    count = {
        "company upserts": sum(p.endswith("/companies/batch/upsert") for p in paths),
        "contact upserts": sum(p.endswith("/contacts/batch/upsert") for p in paths),
        "company lookups": sum(p.endswith("/companies/batch/read") for p in paths),
        "associations": sum("/batch/associate/" in p for p in paths),
        "definitions": sum("/properties/" in p for p in paths),
    }
    return {
        "leads": n,
        "companies": companies,
        "requests": len(paths),
        "by_kind": count,
        "minimum": -(-companies // 100) + -(-n // 100) + -(-n // 100),
        "seconds": seconds,
    }


def render_associations(f: dict[str, Any]) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """Section 12's lines, and its ``(target, figure, met)`` row."""
    kinds = ", ".join(f"{what} {n}" for what, n in f["by_kind"].items())
    lines = [
        f"- {f['leads']:,} leads of {f['companies']} companies: {f['requests']} requests "
        f"({kinds}); the minimum ceil(companies/100) + ceil(contacts/100) + "
        f"ceil(associations/100) is {f['minimum']}; {f['seconds']:.2f} s against the "
        "unlimited fake",
    ]
    extra = f["requests"] - f["minimum"]
    target = (
        "associations: requests per 10,000 leads of 300 companies <= minimum + lookups + 2",
        f"{f['requests']} = minimum {f['minimum']} + {extra}",
        extra <= -(-f["companies"] // 100) + 2,
    )
    return lines, [target]


def bad_data(n: int, mix: str, scope: bool) -> dict[str, Any]:
    """Requests spent on ``n`` records of a bad-data mix, with and without the scope that reads
    the property definitions; the fake names only the first bad input of a batch."""
    change, bound, _ = MIXES[mix]
    fake = Fake(*([] if scope else ["--no-properties-scope"]))
    try:
        hs = HubSpot(fake.token, base_url=fake.url)
        rows = [change(i, r) for i, r in enumerate(records(n, "b"))]
        result = hs.create_or_update_many(rows, keep="failures")
    finally:
        stats = fake.stop()
    good = result.created + result.updated
    batches = -(-good // 100)
    return {
        "requests": stats["requests"],
        "good": good,
        "failed": result.failed,
        # The definitions show property problems, not addresses HubSpot refuses.
        "bound": batches + 1 if scope and "address" not in mix else bound(good, result.failed),
        "codes": sorted({str(f.code) for f in result.failures}),
    }


def real_hubspot(quick: bool) -> tuple[list[dict[str, float]], list[tuple[str, bool, Any]]]:
    """The runs against a HubSpot that behaves like the real one: latency, and bad data."""
    latencies = [
        at_latency(5_000 if quick else 100_000, latency)
        for latency in ((0.2,) if quick else (0.2, 0.8, 2.0))
    ]
    # A short window: HubSpot announces it, and pacing must keep up with any it announces.
    latencies.append(at_latency(5_000 if quick else 30_000, 1.0, limit=40, window=2.0))
    mixes = [
        (mix, scope, bad_data(2_000 if quick else 10_000, mix, scope))
        for mix in MIXES
        for scope in (False, True)
    ]
    mixes.append((RULE, True, required_rule(2_000 if quick else 10_000)))
    return latencies, mixes


#: The bad-data row of a portal rule (2026-09): new contacts must have a firstname.
RULE = "half lack firstname, which a rule requires on new contacts"


def render_real(
    latencies: list[dict[str, float]], mixes: list[tuple[str, bool, Any]]
) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """Markdown tables of :func:`real_hubspot`'s runs, and ``(target, figure, met)`` rows."""
    lines = [
        "| latency per answer | limit | records | seconds | what the window allows | ratio "
        "| failed | 429s / requests | most in flight |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    targets = []
    for lat in latencies:
        lines.append(
            f"| {lat['latency']:g} s | {lat['limit']} | {int(lat['records']):,} "
            f"| {lat['seconds']:.1f} "
            f"| {lat['ideal']:.1f} s | {lat['ratio']:.2f}x | {int(lat['failed'])} "
            f"| {int(lat['429'])} / {int(lat['requests'])} | {int(lat['peak_in_flight'])} |"
        )
        targets.append(
            (
                f"bulk at {lat['latency']:g} s per answer, {lat['limit']}: <= {lat['goal']:.2f} x "
                "the window's time, 0 failed, < 1% 429s",
                f"{lat['ratio']:.2f}x, {int(lat['failed'])} failed, {lat['429_share']:.2%} 429s",
                lat["ratio"] <= lat["goal"] and lat["failed"] == 0 and lat["429_share"] < 0.01,
            )
        )
    lines += [
        "",
        "| bad data | records | definitions scope | requests | bound | landed | failed (codes) "
        "| before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mix, scope, bad in mixes:
        lines.append(
            f"| {mix} | {bad['good'] + bad['failed']:,} | {'yes' if scope else 'no'} "
            f"| {bad['requests']:,} | {bad['bound']:,} | {bad['good']:,} "
            f"| {bad['failed']:,} ({', '.join(bad['codes'])}) "
            f"| {MIXES[mix][2] if mix in MIXES else '2,043 requests for 2,000 records'} |"
        )
        targets.append(
            (
                f"{mix}, {'with' if scope else 'without'} the scope: requests <= bound",
                f"{bad['requests']:,} <= {bad['bound']:,}",
                bad["requests"] <= bad["bound"],
            )
        )
    return lines, targets


def render_modes(rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """A Markdown table of :func:`sync_modes`, and ``(target, figure, met)`` rows."""
    lines = [
        "| mode | records | existing | requests | bound | created | updated | skipped | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    targets = []
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['records']:,} | {r['existing']:,} | {r['requests']:,} "
            f"| {r['bound']:,} | {r['created']:,} | {r['updated']:,} | {r['skipped']:,} "
            f"| {r['failed']:,} |"
        )
        targets.append(
            (
                f"{r['mode']}: requests <= bound, nothing failed",
                f"{r['requests']:,} <= {r['bound']:,}, {r['failed']} failed",
                r["requests"] <= r["bound"] and r["failed"] == 0,
            )
        )
    return lines, targets


def memory_in_fresh_process(n: int) -> dict[str, float]:
    """Runs :func:`memory` in a new interpreter, so that its peak RSS is the bulk run's own."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-only", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def memory(n: int) -> dict[str, float]:
    fake = Fake()
    try:
        hs = HubSpot(fake.token, base_url=fake.url)
        samples: dict[str, float] = {"start": rss_mb()}
        marks = {n // 10: "10%", n // 2: "50%"}

        def sample(done: int, total: int | None) -> None:
            for mark, name in marks.items():
                if done >= mark and name not in samples:
                    samples[name] = rss_mb()

        start = time.perf_counter()
        result = hs.create_or_update_many(records(n, "m"), keep="failures", progress=sample)
        samples["seconds"] = time.perf_counter() - start
        samples["end"] = rss_mb()
        samples["peak"] = peak_rss_mb()
        samples["failed"] = result.failed
    finally:
        fake.stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=100, help="fake's limit per window")
    parser.add_argument("--window", type=float, default=1.0, help="fake's window in seconds")
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    parser.add_argument("--memory-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        print(json.dumps(memory(args.memory_only)))
        return
    if args.quick:
        args.records, args.memory_records = 5_000, 20_000

    conv = conversion(20_000 if args.quick else 200_000, 1 if args.quick else 3)
    ceil = ceiling(args.records, args.rate, args.window)
    latencies, mixes = real_hubspot(args.quick)
    mem = memory_in_fresh_process(args.memory_records)

    print(f"hubspot-upsert {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores\n")
    print("| measure | figure | target |")
    print("| --- | --- | --- |")
    print(
        f"| record conversion (dict to request JSON), one core | {conv:,.0f} records/s "
        "| >= 200,000 |"
    )
    print(
        f"| bulk, {ceil['records']:,} records, fake limit {args.rate} req / {args.window:g} s | "
        f"{ceil['rate']:,.0f} records/s = {ceil['share']:.1%} of the {ceil['ceiling']:,.0f}/s "
        f"ceiling, {ceil['failed']} failed | >= 95%, 0 failed |"
    )
    print(
        f"| requests answered 429 | {ceil['429']} of {ceil['requests']} "
        f"({ceil['429_share']:.2%}) | < 1% |"
    )
    print(
        f"| peak RSS, {args.memory_records:,} generated records (keep='failures') | "
        f"{mem['peak']:.0f} MB (RSS at start {mem['start']:.0f}, 10% {mem.get('10%', 0):.0f}, "
        f"50% {mem.get('50%', 0):.0f}, end {mem['end']:.0f} MB; {mem['seconds']:.0f} s, "
        f"{mem['failed']} failed) | < 300 MB |"
    )

    tables, targets = render_real(latencies, mixes)
    print("\n" + "\n".join(tables) + "\n")
    for target, figure, met in targets:
        print(f"- {target}: {figure} ({'met' if met else 'MISSED'})")


if __name__ == "__main__":
    main()
