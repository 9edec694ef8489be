"""Section 9: several processes, each with a client of its own, sharing one app's rate limit
(as Airflow workers or a job's partitions do). What share of their requests HubSpot answered
429, and how long the slowest took beside what the limit allows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

from bulk import Fake

WORKER = textwrap.dedent(
    """
    import logging, sys, time
    from hubspot_upsert import HubSpot
    logging.getLogger("hubspot_upsert").setLevel(logging.ERROR)  # its 429 waits are counted
    token, url, n, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    hs = HubSpot(token, base_url=url)
    start = time.perf_counter()
    rows = ({"email": f"s{w}-{i}@example.com"} for i in range(n))
    result = hs.create_or_update_many(rows, keep="failures")
    print(result.created + result.updated, result.failed, time.perf_counter() - start)
    """
)


def sharing(procs: int, n: int, limit: int, window: float) -> dict[str, Any]:
    """``procs`` processes of ``n`` records each, started together, on one limit."""
    fake = Fake("--rate-limit", str(limit), "--rate-window", str(window))
    try:
        start = time.perf_counter()
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, fake.token, fake.url, str(n), str(w)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for w in range(procs)
        ]
        outs = [w.communicate(timeout=600)[0].split() for w in workers]
        seconds = time.perf_counter() - start
    finally:
        stats = fake.stop()
    requests = stats["requests"]
    limited = stats["status_counts"].get("429", 0)
    # Every process reads the definitions once, then sends its batches.
    needed = procs * (1 + -(-n // 100))
    allows = (-(-needed // limit) - 1) * window
    finish = [float(o[2]) for o in outs]
    return {
        "case": f"{procs} processes x {n:,} records, {limit} / {window:g} s",
        "landed": sum(int(o[0]) for o in outs),
        "failed": sum(int(o[1]) for o in outs),
        "requests": requests,
        "429": limited,
        "429_share": limited / max(requests, 1),
        "seconds": seconds,
        "allows": allows,
        "finish": (min(finish), max(finish)),
    }


def measure(quick: bool) -> list[dict[str, Any]]:
    if quick:
        return [sharing(4, 500, 20, 1.0)]
    return [sharing(4, 2_000, 20, 1.0), sharing(8, 4_000, 200, 10.0)]


def render(runs: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str, bool]]]:
    lines = [
        "| case | landed | failed | 429s / requests | seconds | what the limit allows "
        "| first and last to finish |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    targets = []
    for r in runs:
        lines.append(
            f"| {r['case']} | {r['landed']:,} | {r['failed']} | {r['429']} / {r['requests']} "
            f"({r['429_share']:.1%}) | {r['seconds']:.1f} | {r['allows']:.1f} s "
            f"| {r['finish'][0]:.1f} s, {r['finish'][1]:.1f} s |"
        )
        targets.append(
            (
                f"{r['case']}: <= 10% of requests answered 429, 0 failed",
                f"{r['429_share']:.1%}, {r['failed']} failed",
                r["429_share"] <= 0.10 and r["failed"] == 0,
            )
        )
    return lines, targets
