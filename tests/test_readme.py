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
