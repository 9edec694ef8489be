"""The notebook recipe executed as a real notebook, by nbclient on an ipykernel."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hubspot_upsert.testing import FakeHubSpot

from .conftest import RECIPES


def test_the_notebook_runs_and_joins_failures_to_their_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "export.csv"
    csv.write_text(
        "E-mail,First Name,Last Name,city\n"
        " Ada@Example.com ,Ada,Lovelace,London\n"
        ",Nobody,Noone,Nowhere\n"
        "grace@example.com,Grace,Hopper,\n"
        "alan@example,Alan,Turing,Manchester\n",
        encoding="utf-8",
    )
    notebook = nbformat.read(RECIPES / "notebook.ipynb", as_version=4)
    with FakeHubSpot(extra_properties={"city": "string"}) as fake:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
        monkeypatch.setenv("HUBSPOT_BASE_URL", fake.url)
        monkeypatch.setenv("CONTACTS_CSV", str(csv))
        NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
        ada = fake.contact("ada@example.com")
        assert ada is not None and ada.properties["firstname"] == "Ada"
        assert fake.contact("grace@example.com") is not None
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    warnings = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not any("TqdmWarning" in w for w in warnings), warnings
    last = notebook.cells[-1].outputs[0]["data"]["text/plain"]
    # The failed row under its own label (3, after dropna), with HubSpot's code.
    assert "alan@example" in last and "INVALID_EMAIL" in last
    assert last.splitlines()[1].startswith("3")
    assert os.environ.get("CONTACTS_CSV") == str(csv)
