"""`redaction.redact` and the log-record redaction, without the stack."""

from __future__ import annotations

import io
import json
import logging

import pytest

from aios.observability import logs, redaction
from aios.observability.redaction import REDACTED, redact

from .conftest import CANARY_ANTHROPIC, CANARY_OPENAI


@pytest.fixture
def canary_env(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_ANTHROPIC)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_OPENAI)
    monkeypatch.setenv("CRM_TOKEN", "crm-token-value-123")
    monkeypatch.setenv("SOME_SERVICE_SECRET", "hunter2hunter2")
    monkeypatch.setenv("AIOS_READ_TIMEOUT", "120.0")  # not a secret: never redacted
    redaction.refresh_secrets()
    yield
    monkeypatch.undo()
    redaction.refresh_secrets()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abcdef123456", f"Authorization: {REDACTED}"),
        ("retry with bearer eyJhbGciOi.payload.sig now", f"retry with bearer {REDACTED} now"),
        ("{'x-api-key': 'abcdefghijkl', 'accept': 'json'}", f"{{'x-api-key': '{REDACTED}', 'accept': 'json'}}"),
        ('{"api_key": "zzzzzzzzzz", "max_tokens": 4096}', f'{{"api_key": "{REDACTED}", "max_tokens": 4096}}'),
        ("Incorrect API key provided: sk-proj-abcdefghijklmnop1234.", f"Incorrect API key provided: {REDACTED}."),
        ("key sk-ant-api03-abcdefghijklmnop", f"key {REDACTED}"),
        ("MY_SERVICE_API_KEY=qwertyuiop1234 next", f"MY_SERVICE_API_KEY={REDACTED} next"),
        ("https://h/p?access_token=abc123&x=1", f"https://h/p?access_token={REDACTED}&x=1"),
    ],
)
def test_key_shapes_are_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ANTHROPIC_API_KEY is not set",
        "invalid x-api-key",
        "x-api-key header is required",
        "gen_ai.usage.input_tokens=693 max_tokens: 4096",
        "risk-assessment sk-learn anthropic:claude-opus-5-5 openai:gpt-5.5",
        "| 1 | anthropic:claude-opus-5-5 | failed | overloaded | 497 |",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_values_of_secret_environment_variables_are_redacted_wherever_they_appear(canary_env):
    text = f"a={CANARY_ANTHROPIC} b=({CANARY_OPENAI}) crm-token-value-123 hunter2hunter2 timeout 120.0"
    cleaned = redact(text)
    for secret in (CANARY_ANTHROPIC, CANARY_OPENAI, "crm-token-value-123", "hunter2hunter2"):
        assert secret not in cleaned
    assert "timeout 120.0" in cleaned


def test_a_key_set_later_is_picked_up_on_refresh(monkeypatch):
    monkeypatch.setenv("LATE_API_KEY", "late-value-0123456789")
    redaction.refresh_secrets()
    assert "late-value-0123456789" not in redact("uses late-value-0123456789")


def test_log_records_are_redacted_at_creation_message_args_and_exception(canary_env):
    redaction.install_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("aios.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("calling with %s and headers %r", CANARY_OPENAI, {"x-api-key": CANARY_ANTHROPIC})
        try:
            raise RuntimeError(f"upstream echoed Authorization: Bearer {CANARY_ANTHROPIC}")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert CANARY_ANTHROPIC not in out and CANARY_OPENAI not in out
    assert out.count(REDACTED) >= 3 and "RuntimeError" in out


def test_json_lines_have_the_documented_fields(canary_env):
    stream = io.StringIO()
    handler = logs.JsonLogHandler(stream)
    logger = logging.getLogger("aios.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with logs.bind(skill="research-lead", flow_run_id="fr-1"):
            logger.info("answered", extra={"provider": "openai", "model": "gpt-5.5", "outcome": "completed"})
            logger.error("key %s leaked", CANARY_OPENAI)
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {"time", "level", "logger", "message"} <= set(first)
    assert (first["skill"], first["flow_run_id"], first["provider"], first["model"], first["outcome"]) == (
        "research-lead",
        "fr-1",
        "openai",
        "gpt-5.5",
        "completed",
    )
    assert first["level"] == "INFO" and first["logger"] == "aios.test.json"
    assert second["message"] == f"key {REDACTED} leaked"


def test_configure_puts_json_on_the_root_logger_instead_of_prefects_console(monkeypatch):
    from prefect.logging.handlers import PrefectConsoleHandler

    root = logging.getLogger()
    saved = list(root.handlers)
    console = PrefectConsoleHandler(stream=io.StringIO())
    root.addHandler(console)
    stream = io.StringIO()
    try:
        monkeypatch.setenv("AIOS_JSON_LOGS", "true")
        handler = logs.configure(stream=stream)
        assert handler in root.handlers and console not in root.handlers
        logging.getLogger("prefect.engine").warning("hello from prefect")
        line = json.loads(stream.getvalue().strip().splitlines()[-1])
        assert line["logger"] == "prefect.engine" and line["message"] == "hello from prefect"
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved:
            root.addHandler(h)
        logs._handler = None
