"""The recipes in their real frameworks: Django, FastAPI, Airflow 3 and Jupyter, installed in
their own environment (make test-integrations), each against a FakeHubSpot on loopback."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "examples" / "recipes"
sys.path.insert(0, str(RECIPES))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
