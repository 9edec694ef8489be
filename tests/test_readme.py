"""The README's examples run: every python block that uses FakeHubSpot is executed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_runnable_examples() -> None:
    assert [b for b in BLOCKS if "FakeHubSpot" in b]


@pytest.mark.parametrize("block", [b for b in BLOCKS if "FakeHubSpot" in b])
def test_readme_block_runs(block: str) -> None:
    exec(compile(block, str(README), "exec"), {})


def test_the_quick_start_runs_as_written_on_a_stock_portal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first example, against a portal with only HubSpot's standard properties: the token
    and address are the fake's, everything else is as the README writes it."""
    from hubspot_upsert.testing import FakeHubSpot

    quick = README.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", quick, flags=re.S)[:1]
    with FakeHubSpot() as fake:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
        monkeypatch.setenv("HUBSPOT_BASE_URL", fake.url)
        code = block.replace('HubSpot("pat-na1-...")', "HubSpot()")
        exec(compile(code, str(README), "exec"), {})
        assert fake.contact("ada@example.com") is not None
        grace = fake.contact("grace@example.com")
        assert grace is not None and grace.properties["firstname"] == "Grace"
    printed = capsys.readouterr().out.split()
    assert printed[1] == "True" and printed[2] == "ada@example.com"
