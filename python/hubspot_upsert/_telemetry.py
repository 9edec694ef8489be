"""OpenTelemetry, when ``opentelemetry-api`` is installed: a span for each bulk run and for
each request to HubSpot (its status, retries and correlation id), and counters of records by
outcome and of answers HubSpot rate-limited. Without the package, nothing is recorded and
nothing is imported.

Spans and metrics go to whatever tracer and meter providers the application configured (an
exporter to Jaeger, Honeycomb, Datadog...); with none configured, OpenTelemetry's API drops
them at no cost worth counting."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import context as _context
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised where the package is absent
    _trace = None  # type: ignore[assignment]

from ._native import __version__ as _version

#: The instrumentation scope's name: what spans and metrics say made them.
SCOPE = "hubspot_upsert"

# A v1 single upsert's path carries the address: spans show the route, never the person.
_V1_EMAIL = re.compile(r"(/contacts/v1/contact/createOrUpdate/email/)[^/?]+")


def _route(path: str) -> str:
    return _V1_EMAIL.sub(r"\1{email}", path.partition("?")[0])


class _Instruments:
    """The tracer and counters, made once."""

    def __init__(self) -> None:
        self.tracer = _trace.get_tracer(SCOPE, _version)
        meter = _metrics.get_meter(SCOPE, _version)
        self.records = meter.create_counter(
            "hubspot_upsert.records",
            unit="{record}",
            description="Records of bulk runs, by outcome",
        )
        self.requests = meter.create_counter(
            "hubspot_upsert.requests",
            unit="{request}",
            description="Requests to HubSpot, by method, route and final status",
        )
        self.rate_limited = meter.create_counter(
            "hubspot_upsert.rate_limited",
            unit="{answer}",
            description="Answers HubSpot gave with status 429 (each retried)",
        )


_instruments: _Instruments | None = None


def _get() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


class Recorder:
    """Records the requests of one call as spans, children of the span current where the
    call began (called by the native core on its I/O thread)."""

    __slots__ = ("_parent",)

    def __init__(self, parent: Any) -> None:
        self._parent = parent

    def request(
        self,
        method: str,
        path: str,
        status: int | None,
        correlation_id: str | None,
        attempts: int,
        throttled: int,
        start_ns: int,
        end_ns: int,
        error: str | None,
    ) -> None:
        tools = _get()
        route = _route(path)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": route,
            "hubspot.attempts": attempts,
            "hubspot.retries": attempts - 1,
        }
        if status is not None:
            attributes["http.response.status_code"] = status
        if correlation_id:
            attributes["hubspot.correlation_id"] = correlation_id
        if throttled:
            attributes["hubspot.rate_limited"] = throttled
        span = tools.tracer.start_span(
            f"HubSpot {method} {route}",
            context=self._parent,
            kind=_trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=start_ns,
        )
        if error is not None:
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, error))
        span.end(end_time=end_ns)
        tools.requests.add(
            1, {"http.request.method": method, "url.path": route, "status": status or 0}
        )
        if throttled:
            tools.rate_limited.add(throttled, {"url.path": route})


def recorder() -> Recorder | None:
    """What records the requests of a call beginning now (None without OpenTelemetry)."""
    if _trace is None:
        return None
    return Recorder(_context.get_current())


_OUTCOMES = ("created", "updated", "unchanged", "skipped", "failed", "associated")


@contextlib.contextmanager
def run_span(name: str, object_type: str, id_property: str, **attributes: Any) -> Iterator[Any]:
    """A span around one bulk run (its requests' spans are its children); ``finish`` it with
    the run's result. Without OpenTelemetry, a no-op."""
    if _trace is None:
        yield _NoRun()
        return
    tools = _get()
    base = {"hubspot.object": object_type, "hubspot.id_property": id_property}
    with tools.tracer.start_as_current_span(
        f"hubspot_upsert {name}",
        kind=_trace.SpanKind.INTERNAL,
        attributes={**base, **{f"hubspot.{k}": v for k, v in attributes.items()}},
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        run = _Run(span, tools, base)
        try:
            yield run
        except BaseException as e:
            run.finish(getattr(e, "bulk_result", None))
            raise
        run.finish(None)


class _NoRun:
    def finish(self, result: Any) -> None:
        pass


class _Run:
    def __init__(self, span: Any, tools: _Instruments, base: dict[str, Any]) -> None:
        self.span, self.tools, self.base, self.done = span, tools, base, False

    def finish(self, result: Any) -> None:
        """Counts the records of ``result`` (a BulkResult), once."""
        if self.done or result is None:
            return
        self.done = True
        self.span.set_attribute("hubspot.total", result.total)
        counts = {o: int(getattr(result, o, 0)) for o in _OUTCOMES}
        counts["archived"] = len(getattr(result, "archived", ()))
        for outcome, count in counts.items():
            self.span.set_attribute(f"hubspot.{outcome}", count)
            if count:
                self.tools.records.add(count, {**self.base, "outcome": outcome})
