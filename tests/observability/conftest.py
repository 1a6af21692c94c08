"""Fixtures for the observability tests: in-memory OpenTelemetry exporters, an OTLP receiver, log capture."""

from __future__ import annotations

import gzip
import io
import logging
from dataclasses import dataclass, field

import pytest

CANARY_ANTHROPIC = "sk-ant-canary-XXXX-3f9a1c77"
CANARY_OPENAI = "sk-canary-YYYY-8b2e4d19"
CANARIES = (CANARY_ANTHROPIC, CANARY_OPENAI)


@dataclass
class Otel:
    """The spans and metrics of this test, through the SDK's in-memory exporter and reader."""

    exporter: object
    reader: object

    def spans(self):
        return list(self.exporter.get_finished_spans())

    def span_named(self, name: str):
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]

    def chat_spans(self):
        return sorted((s for s in self.spans() if s.name.startswith("chat ")), key=lambda s: s.start_time)

    def metrics(self) -> dict[str, list]:
        """metric name -> data points (cumulative since the fixture started)."""
        out: dict[str, list] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


@pytest.fixture
def otel():
    """Telemetry for one test: our tracer and meter write to in-memory exporters (globals untouched)."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aios.observability import otel

    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    otel.install(exporter, reader)
    yield Otel(exporter, reader)
    otel.reset()


@dataclass
class Receiver:
    """A local OTLP/HTTP endpoint: keeps every POST body by path."""

    url: str
    bodies: dict[str, list[bytes]] = field(default_factory=dict)


@pytest.fixture
def otlp_receiver():
    from tests.helpers import receiving_posts

    received = Receiver(url="")

    def keep(path, headers, body) -> None:
        received.bodies.setdefault(path, []).append(gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body)

    with receiving_posts(keep, content_type="application/x-protobuf") as url:
        received.url = url
        yield received


class LogCapture:
    """Every log record of the process, as plain text and as our JSON lines, at DEBUG level."""

    def __init__(self) -> None:
        from aios.observability.logs import JsonLogHandler

        self.text = io.StringIO()
        self.json = io.StringIO()
        self.plain = logging.StreamHandler(self.text)
        self.plain.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.jsonl = JsonLogHandler(self.json)
        self.handlers = (self.plain, self.jsonl)
        self._saved: list[tuple[logging.Logger, int]] = []

    def start(self) -> None:
        loggers = [logging.getLogger()] + [
            lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger) and not lg.propagate
        ]
        for lg in loggers:
            self._saved.append((lg, lg.level))
            lg.setLevel(logging.DEBUG)
            for h in self.handlers:
                lg.addHandler(h)

    def stop(self) -> None:
        for lg, level in self._saved:
            lg.setLevel(level)
            for h in self.handlers:
                lg.removeHandler(h)

    def output(self) -> str:
        return self.text.getvalue() + self.json.getvalue()


@pytest.fixture
def all_logs():
    capture = LogCapture()
    capture.start()
    yield capture
    capture.stop()
