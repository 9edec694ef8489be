"""OpenTelemetry: a span per bulk run and per request (status, retries, HubSpot's correlation
id), counters of records by outcome and of 429s, and structured fields on log records; read
with the SDK's in-memory exporter and metric reader, against FakeHubSpot."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

_EXPORTER = InMemorySpanExporter()
_READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def providers() -> Iterator[None]:
    # OpenTelemetry takes its global providers once per process.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
    yield


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER


def counted(name: str) -> dict[tuple[tuple[str, Any], ...], int]:
    """The sums of a counter by attributes, as the reader has them now."""
    data = _READER.get_metrics_data()
    out: dict[tuple[tuple[str, Any], ...], int] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        out[tuple(sorted(point.attributes.items()))] = point.value
    return out


def test_a_bulk_run_is_a_span_with_its_requests_inside(spans: InMemorySpanExporter) -> None:
    rows = [{"email": f"t{i}@example.com", "firstname": "T"} for i in range(250)]
    rows.append({"email": "t1@example.com", "shoe_size": "44"})  # fails: no such property
    with FakeHubSpot() as fake:
        fake.script(
            ScriptedResponse(
                429,
                {
                    "status": "error",
                    "errorType": "RATE_LIMIT",
                    "policyName": "TEN_SECONDLY_ROLLING",
                },
                headers={"Retry-After": "0.05"},
            )
        )
        before = counted("hubspot_upsert.records")
        result = HubSpot(fake.token, base_url=fake.url).create_or_update_many(rows)
        assert (result.created, result.failed) == (250, 1)
    finished = spans.get_finished_spans()
    (run,) = [s for s in finished if s.name == "hubspot_upsert create_or_update_many"]
    assert run.attributes["hubspot.object"] == "contacts"
    assert (run.attributes["hubspot.created"], run.attributes["hubspot.failed"]) == (250, 1)
    requests = [s for s in finished if s.name.startswith("HubSpot ")]
    assert len(requests) == fake.request_count - 1  # the 429 is a retry inside its request
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in requests)
    assert all(s.kind == trace.SpanKind.CLIENT for s in requests)
    first = requests[0]
    assert first.name == "HubSpot GET /crm/properties/2026-09/contacts"
    assert (
        first.attributes["hubspot.retries"] == 1 and first.attributes["hubspot.rate_limited"] == 1
    )
    assert first.attributes["http.response.status_code"] == 200
    writes = [s for s in requests if s.attributes["url.path"].endswith("/batch/upsert")]
    assert len(writes) == 3
    assert all(s.attributes["hubspot.correlation_id"] for s in writes)
    after = counted("hubspot_upsert.records")
    key = (("hubspot.id_property", "email"), ("hubspot.object", "contacts"), ("outcome", "created"))
    assert after[key] - before.get(key, 0) == 250
    limited = counted("hubspot_upsert.rate_limited")
    assert sum(limited.values()) >= 1


def test_a_failed_request_is_an_error_span_and_no_address_is_shown(
    spans: InMemorySpanExporter,
) -> None:
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
        with pytest.raises(hu.ValidationError):
            hs.create_or_update("secret.person@example.com", {"shoe_size": 44})
    (span,) = spans.get_finished_spans()
    assert span.name == "HubSpot POST /contacts/v1/contact/createOrUpdate/email/{email}"
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 400
    assert "secret.person" not in str(span.to_json())


def test_a_stopped_run_records_its_partial_counts(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    def rows() -> Iterator[dict[str, str]]:
        for i in range(300):
            if i == 250:
                raise OSError("the file was cut")
            yield {"email": f"s{i}@example.com"}

    with FakeHubSpot() as fake, pytest.raises(OSError) as stopped:
        HubSpot(fake.token, base_url=fake.url).create_or_update_many(rows())
    partial = stopped.value.bulk_result  # type: ignore[attr-defined]
    assert partial.created >= 100 and partial.created + partial.failed == 250
    (run,) = [s for s in spans.get_finished_spans() if s.name.startswith("hubspot_upsert")]
    assert run.status.status_code == trace.StatusCode.ERROR
    assert run.attributes["hubspot.created"] == partial.created
    assert run.attributes["hubspot.failed"] == partial.failed
    assert run.events[0].name == "exception"


def test_log_records_carry_structured_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hubspot_upsert")
    with FakeHubSpot() as fake:
        HubSpot(fake.token, base_url=fake.url).create_or_update("ada@example.com")
    (record,) = [r for r in caplog.records if hasattr(r, "hubspot_status")]
    assert record.hubspot_status == 200  # type: ignore[attr-defined]
    assert record.hubspot_method == "POST"  # type: ignore[attr-defined]
    assert record.hubspot_path == "/crm/objects/2026-09/contacts/batch/upsert"  # type: ignore[attr-defined]
    assert len(record.hubspot_correlation_id) == 36  # type: ignore[attr-defined]  # a uuid
    assert record.hubspot_attempt == 1 and record.hubspot_ms >= 0  # type: ignore[attr-defined]
