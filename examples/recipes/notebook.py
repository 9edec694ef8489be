# %% [markdown]
# # A CSV export into HubSpot, from a notebook
#
# Read the export with pandas, clean it, upsert it with a progress bar, and look at what
# failed as a DataFrame. Run the cells in Jupyter (with `HUBSPOT_ACCESS_TOKEN` set), or call
# `sync_csv` from a script.

# %%
from __future__ import annotations

from typing import Any

import pandas as pd

from hubspot_upsert import HubSpot


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """Column names to HubSpot property names; trimmed, lower-case emails; no empty ones."""
    df = df.rename(columns={"E-mail": "email", "First Name": "firstname", "Last Name": "lastname"})
    df["email"] = df["email"].astype("string").str.strip().str.lower()
    return df[df["email"].notna() & (df["email"] != "")]


def sync_csv(path: str, hs: HubSpot) -> tuple[Any, pd.DataFrame]:
    """Upserts the CSV at `path`; returns the result and its failures as a DataFrame."""
    df = clean(pd.read_csv(path))
    result = hs.create_or_update_many(df, progress=True)
    failures = pd.DataFrame(
        [(f.index, f.email, f.code, f.message) for f in result.failures],
        columns=["row", "email", "code", "message"],
    )
    return result, failures


# %%
if __name__ == "__main__":
    import sys

    result, failures = sync_csv(sys.argv[1], HubSpot())  # token from HUBSPOT_ACCESS_TOKEN
    print(result)
    print(failures.to_string(index=False))
