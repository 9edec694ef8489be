"""Run a FakeHubSpot on its own: ``python -m hubspot_upsert.testing --port 8765``.

It prints its URL and token, then serves until interrupted (Ctrl-C), so that programs in any
language, and manual ``curl`` sessions, can talk to it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from ._fake import FakeHubSpot
from ._portal import API_VERSIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubspot_upsert.testing",
        description="Serve a fake HubSpot contact API on loopback until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--token", help="the valid access token (default: a random one)")
    parser.add_argument(
        "--rate-limit", type=int, help="requests allowed per rolling window (default: unlimited)"
    )
    parser.add_argument(
        "--rate-window", type=float, default=10.0, help="the window in seconds (default 10)"
    )
    parser.add_argument("--daily-limit", type=int, help="requests allowed per day")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds HubSpot takes to answer a write or a record read, after counting it",
    )
    parser.add_argument(
        "--network-latency",
        type=float,
        default=0.0,
        help="the network's round trip in seconds, added to every request (half on the way)",
    )
    parser.add_argument(
        "--no-properties-scope",
        action="store_true",
        help="answer the property definitions with 403, as for a token without the scope",
    )
    parser.add_argument(
        "--retry-after", type=float, help="send Retry-After (seconds) with each 429"
    )
    parser.add_argument(
        "--name-all-errors",
        action="store_true",
        help="a rejected batch names every bad input (HubSpot may name only the first)",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="keep no copy of requests (long runs)"
    )
    parser.add_argument(
        "--required-on-create",
        action="append",
        default=[],
        metavar="PROPERTY",
        help="a property new contacts must have on 2026-09 paths (may be repeated)",
    )
    parser.add_argument(
        "--partial-answers",
        action="store_true",
        help="land a batch's good inputs and list the bad ones (207, or 200 on 2026-09)",
    )
    parser.add_argument(
        "--unique-property",
        action="append",
        default=[],
        metavar="PROPERTY",
        help="a string property whose values are unique, to match records on (may be repeated)",
    )
    args = parser.parse_args(argv)
    fake = FakeHubSpot(
        token=args.token,
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        daily_limit=args.daily_limit,
        latency=args.latency,
        network_latency=args.network_latency,
        record_requests=not args.no_record,
        properties_scope=not args.no_properties_scope,
        name_all_errors=args.name_all_errors,
        retry_after=args.retry_after,
        required_on_create=args.required_on_create,
        partial_answers=args.partial_answers,
        unique_properties=args.unique_property,
    )
    stop = threading.Event()
    # Both stop it cleanly; SIGINT is handled explicitly because a shell starts background
    # jobs with it ignored.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with fake:
        print(f"FakeHubSpot serving at {fake.url}", flush=True)
        print(f"token: {fake.token}", flush=True)
        print(
            "paths: POST /contacts/v1/contact/createOrUpdate/email/{email}, "
            "POST /crm/v3/objects/contacts/batch/upsert and /batch/read, "
            "GET /crm/v3/properties/contacts, and "
            f"the same under the date versions {', '.join(API_VERSIONS)} "
            "(/crm/objects/{version}/contacts/batch/upsert, /crm/properties/{version}/contacts)",
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print(
            f"stopped after {fake.request_count} requests, {len(fake.contacts)} contacts",
            file=sys.stderr,
        )
        stats = {
            "requests": fake.request_count,
            "contacts": len(fake.contacts),
            "status_counts": fake.status_counts,
            "peak_in_flight": fake.peak_in_flight,
        }
        print(f"stats: {json.dumps(stats)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
