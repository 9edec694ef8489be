"""Ctrl-C and other signal handlers take effect promptly during requests and waits.

Each case runs in a fresh interpreter: signal handlers run in the main thread, and pytest's
own timeout uses SIGALRM.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time
    from hubspot_upsert import HubSpot
    from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

    class TaskTimeout(Exception):
        pass

    def on_alarm(signum, frame):
        raise TaskTimeout("execution_timeout")

    signal.signal(signal.SIGALRM, on_alarm)
    # A shell may start this process with SIGINT ignored: give it Python's usual handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    where, how = sys.argv[1], sys.argv[2]
    with FakeHubSpot() as fake:
        if where == "request":
            fake.script(ScriptedResponse(200, {"vid": 1, "isNew": True}, delay=30))
        else:
            fake.script(ScriptedResponse(503, {"status": "error"}, headers={"Retry-After": "30"}))
        hs = HubSpot(fake.token, base_url=fake.url, timeout=60)
        if how == "alarm":
            signal.setitimer(signal.ITIMER_REAL, 0.3)
        else:
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        start = time.monotonic()
        try:
            hs.create_or_update("ada@example.com")
            outcome = {"raised": None}
        except BaseException as e:
            outcome = {"raised": type(e).__name__, "args": list(map(str, e.args)),
                       "notes": getattr(e, "__notes__", [])}
        outcome["seconds"] = time.monotonic() - start
        outcome["requests"] = fake.request_count
        print(json.dumps(outcome), flush=True)
    """
)


@pytest.mark.parametrize("where", ["request", "backoff"])
@pytest.mark.parametrize(
    ("how", "raised"), [("sigint", "KeyboardInterrupt"), ("alarm", "TaskTimeout")]
)
def test_signal_handlers_interrupt_promptly(where: str, how: str, raised: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, where, how],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome["raised"] == raised
    if raised == "TaskTimeout":
        assert outcome["args"] == ["execution_timeout"]
    # The signal comes at 0.3 s; the bound is half a second after it, checked generously.
    assert outcome["seconds"] < 1.5, outcome
    assert any("may still have been applied" in n for n in outcome["notes"])
    assert outcome["requests"] == 1
    assert "panic" not in out.stderr.lower()
