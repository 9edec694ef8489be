"""Section 13: the command on the files people have, at 20,000 and 200,000 rows: HubSpot's own
export read back with --labels (CSV), a Parquet file, an Excel workbook. The command runs in a
process of its own against the fake in another and reports its peak RSS as it exits, so a
file read whole would show as memory growing with the rows."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bulk import Fake

STAGES = ("Lead", "Marketing Qualified Lead", "Customer")


def rows(n: int) -> Any:
    for i in range(n):
        yield {
            "Record ID": str(1000 + i),
            "First Name": f"First{i}",
            "Last Name": f"Last{i}",
            "Email": f"f{i}@example.com",
            "Lifecycle Stage": STAGES[i % 3],
            "Create Date": "2026-01-04 09:30",
        }


def write_csv(path: Path, n: int) -> None:
    header = list(next(rows(1)))
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows(n):
            f.write(",".join(row.values()) + "\n")


def write_parquet(path: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    header = list(next(rows(1)))
    with pq.ParquetWriter(path, pa.schema([(h, pa.string()) for h in header])) as writer:
        chunk: list[dict[str, str]] = []
        for row in rows(n):
            chunk.append(row)
            if len(chunk) == 10_000:
                writer.write_table(pa.Table.from_pylist(chunk))
                chunk = []
        if chunk:
            writer.write_table(pa.Table.from_pylist(chunk))


def write_xlsx(path: Path, n: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("contacts")
    sheet.append(list(next(rows(1))))
    for row in rows(n):
        sheet.append(list(row.values()))
    book.save(path)


WRITERS = {"csv": write_csv, "parquet": write_parquet, "xlsx": write_xlsx}

#: How much the peak RSS may grow from the smaller file to the larger. A workbook's rows
#: stream, but its shared strings (each distinct text once, which cells point to) are a table
#: openpyxl reads whole before the first row: it grows with the distinct texts.
GROWTH = {"csv": 1.25, "parquet": 1.25, "xlsx": 1.5}


# The command, reporting its peak RSS as it exits: the kernel's high-water mark of this
# process's memory (ru_maxrss would carry over the benchmark's own through fork).
COMMAND = """
import atexit, sys
def peak():
    with open("/proc/self/status") as f:
        print(next(x for x in f if x.startswith("VmHWM:")).strip(), file=sys.stderr)
atexit.register(peak)
from hubspot_upsert.cli import main
sys.exit(main(sys.argv[1:]))
"""


def command(path: Path) -> dict[str, Any]:
    """One run of the command on ``path``: exit status, seconds, peak RSS, requests."""
    fake = Fake()
    try:
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token}
        started = time.perf_counter()
        argv = [str(path), "--labels", "--base-url", fake.url, "--quiet"]
        proc = subprocess.run(
            [sys.executable, "-c", COMMAND, *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        seconds = time.perf_counter() - started
    finally:
        stats = fake.stop()
    peaks = [x for x in proc.stderr.splitlines() if x.startswith("VmHWM:")]
    return {
        "exit": proc.returncode,
        "stderr": proc.stderr[-500:],
        "seconds": seconds,
        "peak_mb": int(peaks[-1].split()[1]) / 1024,
        "requests": stats["requests"],
        "contacts": stats.get("contacts"),
    }


def measure(quick: bool) -> list[dict[str, Any]]:
    sizes = (10_000, 20_000) if quick else (20_000, 200_000)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt, write in WRITERS.items():
            for n in sizes:
                path = Path(folder) / f"contacts-{n}.{fmt}"
                write(path, n)
                run = command(path)
                run.update(format=fmt, rows=n, size_mb=path.stat().st_size / 2**20)
                runs.append(run)
                path.unlink()
    return runs


def render(runs: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str, bool]]]:
    lines = [
        "| file | rows | size | exit | seconds | requests | peak RSS of the command |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    targets = []
    by_format: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_format.setdefault(r["format"], []).append(r)
        lines.append(
            f"| {r['format']} | {r['rows']:,} | {r['size_mb']:.1f} MB | {r['exit']} "
            f"| {r['seconds']:.1f} | {r['requests']:,} | {r['peak_mb']:.0f} MB |"
        )
    for fmt, (small, large) in by_format.items():
        growth = large["peak_mb"] / small["peak_mb"]
        expected = 1 + -(-large["rows"] // 100)
        targets.append(
            (
                f"the command on a {fmt} file of {large['rows']:,} rows: exit 0, "
                f"{expected:,} requests, peak RSS <= {GROWTH[fmt]} x that at {small['rows']:,} "
                "rows",
                f"exit {large['exit']}, {large['requests']:,} requests, "
                f"{large['peak_mb']:.0f} MB vs {small['peak_mb']:.0f} MB = {growth:.2f}x",
                large["exit"] == 0 and large["requests"] == expected and growth <= GROWTH[fmt],
            )
        )
    return lines, targets
