"""hubspot-upsert side by side with the clients people use today, against one local server.

Run by bench/run.py (``make bench``), which installs the peers into bench/.venv. Each client
is driven the way its users drive it; every figure comes from this run, on this machine.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Upsert = Callable[[int], None]


def email(i: int) -> str:
    return f"peer{i % 5000}@example.com"


def v1_body(i: int) -> dict[str, Any]:
    return {"properties": [{"property": "firstname", "value": f"F{i}"}]}


# -- the clients ------------------------------------------------------------------------------


def ours(url: str, token: str) -> Upsert:
    from hubspot_upsert import HubSpot

    hs = HubSpot(token, base_url=url)

    def call(i: int) -> None:
        hs.create_or_update(email(i), {"firstname": f"F{i}"})

    return call


def ours_via_io_thread(url: str, token: str) -> Upsert:
    """The same upsert sent through the client's I/O thread (as async and bulk requests are):
    what the calling thread's transport is measured against. Needs the benchmark's build."""
    from hubspot_upsert import HubSpot

    native = HubSpot(token, base_url=url)._native

    def call(i: int) -> None:
        native.create_or_update_via_io_thread(email(i), {"firstname": f"F{i}"})

    return call


def hubspot3(url: str, token: str) -> Upsert:
    from hubspot3 import Hubspot3

    contacts = Hubspot3(access_token=token, api_base=url).contacts

    def call(i: int) -> None:
        contacts.create_or_update_by_email(email(i), data=v1_body(i))

    return call


def official_reused(url: str, token: str) -> Upsert:
    """hubspot-api-client, keeping its batch_api object (v3 batch upsert, one input)."""
    from hubspot import HubSpot
    from hubspot.crm.contacts import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        SimplePublicObjectBatchInputUpsert,
    )

    batch_api = HubSpot(access_token=token, host=url).crm.contacts.batch_api

    def call(i: int) -> None:
        one = SimplePublicObjectBatchInputUpsert(
            id=email(i), id_property="email", properties={"firstname": f"F{i}"}
        )
        batch_api.upsert(
            batch_input_simple_public_object_batch_input_upsert=(
                BatchInputSimplePublicObjectBatchInputUpsert(inputs=[one])
            )
        )

    return call


def official_readme(url: str, token: str) -> Upsert:
    """hubspot-api-client as its README writes it: through the client on every call."""
    from hubspot import HubSpot
    from hubspot.crm.contacts import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        SimplePublicObjectBatchInputUpsert,
    )

    api_client = HubSpot(access_token=token, host=url)

    def call(i: int) -> None:
        one = SimplePublicObjectBatchInputUpsert(
            id=email(i), id_property="email", properties={"firstname": f"F{i}"}
        )
        api_client.crm.contacts.batch_api.upsert(
            batch_input_simple_public_object_batch_input_upsert=(
                BatchInputSimplePublicObjectBatchInputUpsert(inputs=[one])
            )
        )

    return call


def hubspot_sdk(url: str, token: str) -> Upsert:
    from hubspot_sdk import HubSpot

    batch = HubSpot(access_token=token, base_url=url).crm.objects.contacts.batch

    def call(i: int) -> None:
        batch.upsert(
            inputs=[{"id": email(i), "idProperty": "email", "properties": {"firstname": f"F{i}"}}]
        )

    return call


def requests_session(url: str, token: str) -> Upsert:
    from urllib.parse import quote

    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(i: int) -> None:
        path = f"/contacts/v1/contact/createOrUpdate/email/{quote(email(i), safe='')}"
        session.post(url + path, json=v1_body(i)).raise_for_status()

    return call


def httpx_client(url: str, token: str) -> Upsert:
    from urllib.parse import quote

    import httpx

    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})

    def call(i: int) -> None:
        path = f"/contacts/v1/contact/createOrUpdate/email/{quote(email(i), safe='')}"
        client.post(path, json=v1_body(i)).raise_for_status()

    return call


def raw_floor(url: str, token: str) -> Upsert:
    """The server's floor: prebuilt requests on one keep-alive socket, minimal parsing. Each is
    the request hubspot-upsert sends for one upsert (a batch upsert of one on the newest date
    version), so that the ratio is the client's own cost."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")

    def request(i: int) -> bytes:
        one = {"id": email(i), "idProperty": "email", "objectWriteTraceId": "0"}
        body = json.dumps({"inputs": [{**one, "properties": {"firstname": "F0"}}]}).encode()
        head = (
            f"POST /crm/objects/2026-09/contacts/batch/upsert HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    requests_ = [request(i) for i in range(5000)]
    lock = threading.Lock()

    def call(i: int) -> None:
        with lock:
            sock.sendall(requests_[i % 5000])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            reader.read(length)

    return call


#: The same client with its single upserts sent through the I/O thread.
VIA_IO_THREAD = "hubspot-upsert, through the I/O thread"

SINGLE: dict[str, Callable[[str, str], Upsert]] = {
    "hubspot-upsert": ours,
    VIA_IO_THREAD: ours_via_io_thread,
    "hubspot3": hubspot3,
    "hubspot-api-client (batch_api kept)": official_reused,
    "hubspot-api-client (README way)": official_readme,
    "hubspot-sdk": hubspot_sdk,
    "requests.Session": requests_session,
    "httpx.Client": httpx_client,
}
FLOOR = "raw socket loop (server floor)"


# -- measures ---------------------------------------------------------------------------------


@dataclass
class Latency:
    p50: float
    p90: float
    p99: float
    calls_per_s: float


def sequential(make: Callable[[str, str], Upsert], url: str, token: str, n: int) -> Latency:
    call = make(url, token)
    for i in range(min(100, n)):
        call(i)
    times = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter_ns()
        call(i)
        times.append((time.perf_counter_ns() - t) / 1e6)
    total = time.perf_counter() - start
    q = statistics.quantiles(times, n=100)
    return Latency(q[49], q[89], q[98], n / total)


def threaded(make: Callable[[str, str], Upsert], url: str, token: str, per_thread: int) -> float:
    call = make(url, token)
    call(0)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        barrier.wait()
        try:
            for i in range(per_thread):
                call(t * per_thread + i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return 8 * per_thread / seconds


COLD = {
    "hubspot-upsert": "import hubspot_upsert; hubspot_upsert.HubSpot('t')",
    "hubspot3": "import hubspot3; hubspot3.Hubspot3(access_token='t').contacts",
    "hubspot-api-client": (
        "from hubspot import HubSpot; HubSpot(access_token='t').crm.contacts.batch_api"
    ),
    "hubspot-sdk": (
        "from hubspot_sdk import HubSpot; HubSpot(access_token='t').crm.objects.contacts.batch"
    ),
    "requests.Session": "import requests; requests.Session()",
    "httpx.Client": "import httpx; httpx.Client()",
}


def cold_start(code: str, runs: int) -> float:
    """Median milliseconds of import plus construction, each in a fresh interpreter."""
    script = (
        f"import time; t = time.perf_counter()\n{code}\nprint((time.perf_counter() - t) * 1000)"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


# -- bulk with the peers: the loop a user would write ---------------------------------------


def bulk_official(url: str, token: str, n: int, budget: float) -> tuple[int, int, float]:
    """hubspot-api-client's batch upsert in chunks of 100; errors are counted and skipped."""
    from hubspot import HubSpot
    from hubspot.crm.contacts import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        SimplePublicObjectBatchInputUpsert,
    )
    from hubspot.crm.contacts.exceptions import ApiException

    batch_api = HubSpot(access_token=token, host=url).crm.contacts.batch_api
    done = failed = 0
    start = time.perf_counter()
    for first in range(0, n, 100):
        if time.perf_counter() - start > budget:
            break
        inputs = [
            SimplePublicObjectBatchInputUpsert(
                id=f"o{i}@example.com", id_property="email", properties={"firstname": "F"}
            )
            for i in range(first, min(first + 100, n))
        ]
        try:
            batch_api.upsert(
                batch_input_simple_public_object_batch_input_upsert=(
                    BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
                )
            )
            done += len(inputs)
        except ApiException:
            failed += len(inputs)
    return done, failed, time.perf_counter() - start


def bulk_hubspot3(url: str, token: str, n: int, budget: float) -> tuple[int, int, float]:
    """hubspot3, one call per contact; errors are counted and skipped."""
    from hubspot3 import Hubspot3
    from hubspot3.error import HubspotError

    contacts = Hubspot3(access_token=token, api_base=url).contacts
    done = failed = 0
    start = time.perf_counter()
    for i in range(n):
        if time.perf_counter() - start > budget:
            break
        try:
            contacts.create_or_update_by_email(f"h{i}@example.com", data=v1_body(i))
            done += 1
        except HubspotError:
            failed += 1
    return done, failed, time.perf_counter() - start


def pin(cpu: int) -> None:
    """Pins this process to one core where the machine has more than one."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})
