"""Recipe: a Dask job syncs its partitions into HubSpot through one PostgreSQL sync state.

Each partition is synced by the worker that holds it, with a client of its own; the state in
PostgreSQL is shared, so the partitions of tonight's job and tomorrow's run see the same
records: a contact that has not changed since HubSpot last accepted it is not sent, and a job
killed halfway is resumed by running it again.

    HUBSPOT_ACCESS_TOKEN=... HUBSPOT_STATE=postgresql://sync@db/hubspot \\
        python dask_partitions.py 'exports/contacts-*.csv'

Needs ``pip install 'hubspot-upsert[postgresql]' 'dask[dataframe]'``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from hubspot_upsert import HubSpot

#: What each partition reports back: one row of counts.
COUNTS = ["total", "created", "updated", "unchanged", "failed"]


def sync_partition(frame: pd.DataFrame, state: str) -> pd.DataFrame:
    """Upserts one partition's rows. Runs in a worker process: the client is made here (one
    per partition; a client is not sent between processes) and closed when done."""
    with HubSpot() as hs:
        result = hs.create_or_update_many(frame, state=state, keep="failures")
    for failure in result.failures[:5]:
        print(f"hubspot-upsert: {failure}", file=sys.stderr)
    return pd.DataFrame([[getattr(result, n) for n in COUNTS]], columns=COUNTS)


def sync(paths: str, state: str, scheduler: str = "processes") -> dict[str, int]:
    """Reads the files as Dask partitions (every column as text: HubSpot takes text, and a
    column of ids must not become floats) and syncs them all; returns the counts summed."""
    frames = dd.read_csv(paths, dtype=str, keep_default_na=False, blocksize=None)
    meta = pd.DataFrame({n: pd.Series(dtype="int64") for n in COUNTS})
    counts: Any = frames.map_partitions(sync_partition, state, meta=meta)
    with dask.config.set(scheduler=scheduler):
        totals = counts.sum().compute()
    return {n: int(totals[n]) for n in COUNTS}


if __name__ == "__main__":
    print(sync(sys.argv[1], os.environ["HUBSPOT_STATE"]))
