"""The async face: concurrent upserts with ``asyncio.gather`` beside hubspot-sdk's async client
and httpx.AsyncClient, with the event loop's lag measured meanwhile; and where the time of one
sync upsert goes, beside the server's floor.

    python bench/async_bench.py            # 1,000 concurrent upserts, three runs each
    python bench/async_bench.py --quick    # a smoke run

The fake HubSpot runs in a process of its own (see bulk.Fake).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import bulk

AsyncUpsert = Callable[[int], Awaitable[Any]]


def email(i: int) -> str:
    return f"async{i}@example.com"


async def ours(url: str, token: str) -> tuple[AsyncUpsert, Callable[[], Awaitable[None]]]:
    from hubspot_upsert import AsyncHubSpot

    hs = AsyncHubSpot(token, base_url=url)

    async def call(i: int) -> Any:
        return await hs.create_or_update(email(i), {"firstname": f"F{i}"})

    return call, hs.aclose


async def sdk(url: str, token: str) -> tuple[AsyncUpsert, Callable[[], Awaitable[None]]]:
    from hubspot_sdk import AsyncHubSpot

    client = AsyncHubSpot(access_token=token, base_url=url)
    batch = client.crm.objects.contacts.batch

    async def call(i: int) -> Any:
        one = {"id": email(i), "idProperty": "email", "properties": {"firstname": f"F{i}"}}
        return await batch.upsert(inputs=[one])

    return call, client.close


async def httpx_client(url: str, token: str) -> tuple[AsyncUpsert, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"})

    async def call(i: int) -> Any:
        path = f"/contacts/v1/contact/createOrUpdate/email/{quote(email(i), safe='')}"
        response = await client.post(
            path, json={"properties": [{"property": "firstname", "value": f"F{i}"}]}
        )
        response.raise_for_status()
        return response.json()

    return call, client.aclose


CLIENTS = {
    "hubspot-upsert AsyncHubSpot": ours,
    "hubspot-sdk AsyncHubSpot": sdk,
    "httpx.AsyncClient (v1 path)": httpx_client,
}


async def gather_run(make: Any, url: str, token: str, n: int) -> dict[str, float]:
    call, close = await make(url, token)
    await call(-1)  # warm: connections, runtime
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - start - 0.001)

    tick = asyncio.ensure_future(ticker())
    start = time.perf_counter()
    await asyncio.gather(*(call(i) for i in range(n)))
    seconds = time.perf_counter() - start
    stop.set()
    await tick
    await close()
    lags.sort()
    return {
        "calls_per_s": n / seconds,
        "lag_p99_ms": lags[int(len(lags) * 0.99) - 1] * 1000 if lags else 0.0,
        "lag_max_ms": lags[-1] * 1000 if lags else 0.0,
    }


def concurrent(n: int, repeats: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, make in CLIENTS.items():
        runs = []
        for _ in range(repeats):
            fake = bulk.Fake()
            try:
                runs.append(asyncio.run(gather_run(make, fake.url, fake.token, n)))
            finally:
                fake.stop()
        out[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return out


def hand_offs(n: int) -> dict[str, float]:
    """Where one sync upsert's time goes: the whole call, and the parts a Python caller can
    time apart (conversion alone, a raw socket round trip to the same server)."""
    import socket

    from hubspot_upsert import HubSpot

    fake = bulk.Fake()
    try:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update("warm@example.com")
        props = {"firstname": "Ada", "lastname": "Lovelace"}
        calls = []
        for i in range(n):
            start = time.perf_counter()
            hs.create_or_update(f"h{i}@example.com", props)
            calls.append(time.perf_counter() - start)
        converts = []
        for i in range(n):
            start = time.perf_counter()
            hs.prepare({"email": f"h{i}@example.com", **props})
            converts.append(time.perf_counter() - start)
        host, port = fake.url.removeprefix("http://").split(":")
        body = b'{"properties":[{"property":"firstname","value":"Ada"}]}'
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = []
        for i in range(n):
            request = (
                f"POST /contacts/v1/contact/createOrUpdate/email/r{i}%40example.com HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {fake.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            start = time.perf_counter()
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                data += sock.recv(65536)
            raw.append(time.perf_counter() - start)
        sock.close()
    finally:
        fake.stop()
    return {
        "call_p50_us": statistics.median(calls) * 1e6,
        "convert_p50_us": statistics.median(converts) * 1e6,
        "raw_p50_us": statistics.median(raw) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, repeats = (100, 1) if args.quick else (1000, 3)
    results = concurrent(n, repeats)
    print(f"| client, {n} concurrent upserts | calls/s | loop lag p99 ms | loop lag max ms |")
    print("| --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['calls_per_s']:,.0f} | {r['lag_p99_ms']:.2f} | {r['lag_max_ms']:.2f} |"
        )
    ours_rate = results["hubspot-upsert AsyncHubSpot"]["calls_per_s"]
    best = max(v["calls_per_s"] for k, v in results.items() if not k.startswith("hubspot-upsert"))
    print(f"\nours / fastest peer: {ours_rate / best:.1f}x (target >= 3x)")
    split = hand_offs(200 if args.quick else 2000)
    print(
        f"one sync upsert p50 {split['call_p50_us']:.0f} us; its conversion alone "
        f"{split['convert_p50_us']:.1f} us; a raw socket round trip to the same server "
        f"{split['raw_p50_us']:.0f} us"
    )


if __name__ == "__main__":
    main()
