"""What a run leaves behind for people and tools: redaction (every string that leaves goes through it),
JSON logs, OpenTelemetry set-up and export (`otel`), and the spans and metrics of skill runs (`telemetry`)."""
