"""The LLM emulators driven by the real anthropic and openai SDKs, plus schema_fill.

These tests pin down which SDK exception each fault mode produces: the runtime's
error classifier relies on exactly these classes.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional

import anthropic
import httpx
import httpx2
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from aios.core.retry_after import parse_retry_after
from aios.emulators.blackhole import BlackHole
from aios.emulators.control import EmulatorControl
from aios.emulators.llm import context_window
from aios.emulators.schema_fill import instance_for, invalid_instance_for, is_valid
from aios.emulators.server import EmulatorHandle

from .conftest import API_KEY

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-5-mini"
QUESTION = "Summarise the quarterly revenue report for Acme"
USER = [{"role": "user", "content": QUESTION}]

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "risk": {"enum": ["low", "medium", "high"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "owner": {"type": ["object", "null"], "properties": {"email": {"type": "string", "format": "email"}},
                  "required": ["email"], "additionalProperties": False},
    },
    "required": ["title", "score", "risk", "tags", "owner"],
    "additionalProperties": False,
}
TOOL = {"name": "file_ticket", "description": "File a ticket",
        "input_schema": {"type": "object", "properties": {"summary": {"type": "string"},
                                                          "priority": {"type": "integer", "minimum": 1, "maximum": 4}},
                         "required": ["summary", "priority"]}}


def _claude_call(client: anthropic.AsyncAnthropic, model: str = CLAUDE, **kwargs: Any) -> Any:
    return client.messages.create(model=model, max_tokens=256, messages=USER, **kwargs)  # type: ignore[arg-type]


def _chat_call(client: openai.AsyncOpenAI, model: str = GPT, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=USER, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ success paths
async def test_anthropic_output_config_schema(claude: anthropic.AsyncAnthropic) -> None:
    raw = await claude.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=256, messages=USER,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": REPORT_SCHEMA}},
    )
    assert raw.headers["request-id"].startswith("req_")
    message = await raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.model == CLAUDE
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    jsonschema.validate(json.loads(message.content[0].text), REPORT_SCHEMA)
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


async def test_anthropic_forced_tool(claude: anthropic.AsyncAnthropic) -> None:
    message = await _claude_call(claude, tools=[TOOL], tool_choice={"type": "tool", "name": "file_ticket"})
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "file_ticket" and block.id.startswith("toolu_")
    jsonschema.validate(block.input, TOOL["input_schema"])


def test_anthropic_sync_client_plain_text(emulator: EmulatorHandle) -> None:
    client = anthropic.Anthropic(api_key="k", base_url=emulator.anthropic_base_url, max_retries=0)
    message = client.messages.create(model="my-own-fine-tune", max_tokens=64, messages=USER)  # type: ignore[arg-type]
    assert message.content[0].type == "text" and "Acme" in message.content[0].text
    assert message.model == "my-own-fine-tune"  # unknown models are accepted, not 404ed
    tokens = client.messages.count_tokens(model=CLAUDE, messages=USER)  # type: ignore[arg-type]
    assert tokens.input_tokens > 0


async def test_openai_chat_json_schema(gpt: openai.AsyncOpenAI) -> None:
    raw = await gpt.chat.completions.with_raw_response.create(
        model=GPT, messages=USER,  # type: ignore[arg-type]
        response_format={"type": "json_schema",
                         "json_schema": {"name": "report", "schema": REPORT_SCHEMA, "strict": True}},
    )
    assert raw.headers["x-request-id"]
    completion = raw.parse()  # openai keeps the legacy (sync) parse on raw responses
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and choice.finish_reason == "stop"
    jsonschema.validate(json.loads(choice.message.content or ""), REPORT_SCHEMA)
    usage = completion.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_openai_chat_forced_function(gpt: openai.AsyncOpenAI) -> None:
    tool = {"type": "function", "function": {"name": "file_ticket", "parameters": TOOL["input_schema"]}}
    completion = await _chat_call(gpt, tools=[tool], tool_choice={"type": "function",
                                                                  "function": {"name": "file_ticket"}})
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "file_ticket"
    jsonschema.validate(json.loads(call.function.arguments), TOOL["input_schema"])


async def test_openai_responses_text_format(gpt: openai.AsyncOpenAI) -> None:
    response = await gpt.responses.create(
        model=GPT, input=QUESTION, instructions="Be brief.",
        text={"format": {"type": "json_schema", "name": "report", "schema": REPORT_SCHEMA, "strict": True}},
    )
    assert response.status == "completed"
    jsonschema.validate(json.loads(response.output_text), REPORT_SCHEMA)
    assert response.usage is not None and response.usage.input_tokens > 0


async def test_openai_responses_function_call_and_plain_text(gpt: openai.AsyncOpenAI) -> None:
    tool = {"type": "function", "name": "file_ticket", "parameters": TOOL["input_schema"], "strict": False}
    response = await gpt.responses.create(model=GPT, input=USER, tools=[tool],  # type: ignore[arg-type]
                                          tool_choice={"type": "function", "name": "file_ticket"})
    call = response.output[0]
    assert call.type == "function_call" and call.name == "file_ticket"
    jsonschema.validate(json.loads(call.arguments), TOOL["input_schema"])
    plain = await gpt.responses.create(model=GPT, input=QUESTION)
    assert "Acme" in plain.output_text


async def test_openai_models_list(gpt: openai.AsyncOpenAI) -> None:
    ids = [model.id async for model in gpt.models.list()]
    assert GPT in ids


def test_missing_credentials_are_rejected(emulator: EmulatorHandle) -> None:
    body = {"model": CLAUDE, "max_tokens": 10, "messages": USER}
    no_key = httpx.post(f"{emulator.anthropic_base_url}/v1/messages", json=body,
                        headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error" and no_key.json()["type"] == "error"
    no_version = httpx.post(f"{emulator.anthropic_base_url}/v1/messages", json=body, headers={"x-api-key": "k"})
    assert no_version.status_code == 400
    no_bearer = httpx.post(f"{emulator.openai_base_url}/chat/completions", json={"model": GPT, "messages": USER})
    assert no_bearer.status_code == 401 and set(no_bearer.json()["error"]) == {"message", "type", "param", "code"}


# ------------------------------------------------------------------- fault modes
ANTHROPIC_FAULTS = [
    ("overloaded", anthropic.OverloadedError, 529),
    ("error_500", anthropic.InternalServerError, 500),
    ("error_502", anthropic.InternalServerError, 502),
    ("unavailable", anthropic.ServiceUnavailableError, 503),
    ("gateway_timeout", anthropic.GatewayTimeoutError, 504),
    ("rate_limited", anthropic.RateLimitError, 429),
    ("bad_request", anthropic.BadRequestError, 400),
    ("unauthorized", anthropic.AuthenticationError, 401),
    ("forbidden", anthropic.PermissionDeniedError, 403),
    ("context_length", anthropic.BadRequestError, 400),
    ("not_found", anthropic.NotFoundError, 404),
]
OPENAI_FAULTS = [
    ("overloaded", openai.InternalServerError, 503),
    ("error_500", openai.InternalServerError, 500),
    ("error_502", openai.InternalServerError, 502),
    ("unavailable", openai.InternalServerError, 503),
    ("gateway_timeout", openai.InternalServerError, 504),
    ("rate_limited", openai.RateLimitError, 429),
    ("bad_request", openai.BadRequestError, 400),
    ("unauthorized", openai.AuthenticationError, 401),
    ("forbidden", openai.PermissionDeniedError, 403),
    ("context_length", openai.BadRequestError, 400),
    ("not_found", openai.NotFoundError, 404),
]


@pytest.mark.parametrize(("mode", "exc", "status"), ANTHROPIC_FAULTS)
async def test_anthropic_fault_modes(claude: anthropic.AsyncAnthropic, control: EmulatorControl,
                                     mode: str, exc: type[anthropic.APIStatusError], status: int) -> None:
    control.set_fault("anthropic", mode, retry_after=7)
    with pytest.raises(exc) as info:
        await _claude_call(claude)
    assert type(info.value) is exc and info.value.status_code == status
    if mode != "error_502":  # 502 is the HTML page of a gateway, like the real thing
        assert info.value.request_id and info.value.request_id.startswith("req_")
    if mode == "rate_limited":
        assert info.value.response.headers["retry-after"] == "7"
    if mode == "context_length":
        assert "prompt is too long" in info.value.message and "200000 maximum" in info.value.message
    if mode == "not_found":
        assert info.value.body["error"] == {"type": "not_found_error", "message": f"model: {CLAUDE}"}


@pytest.mark.parametrize(("mode", "exc", "status"), OPENAI_FAULTS)
async def test_openai_fault_modes(gpt: openai.AsyncOpenAI, control: EmulatorControl,
                                  mode: str, exc: type[openai.APIStatusError], status: int) -> None:
    control.set_fault("openai", mode, retry_after=2.5)
    with pytest.raises(exc) as info:
        await _chat_call(gpt)
    assert type(info.value) is exc and info.value.status_code == status
    with pytest.raises(exc):  # the Responses API shares the provider's rules
        await gpt.responses.create(model=GPT, input=QUESTION)
    if mode == "rate_limited":
        assert info.value.response.headers["retry-after"] == "2.5" and info.value.code == "rate_limit_exceeded"
    if mode == "context_length":
        assert info.value.code == "context_length_exceeded"
    if mode == "unauthorized":
        assert info.value.code == "invalid_api_key"
    if mode == "not_found":
        assert info.value.code == "model_not_found" and GPT in info.value.message


async def test_hang_fires_the_read_timeout(claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI,
                                           control: EmulatorControl) -> None:
    control.set_fault("anthropic", "hang")
    control.set_fault("openai", "hang")
    short = httpx2.Timeout(5.0, connect=1.0, read=0.4)  # how long it takes: bench/emulators.py
    with pytest.raises(anthropic.APITimeoutError):
        await _claude_call(claude.with_options(timeout=short))
    with pytest.raises(openai.APITimeoutError):
        await _chat_call(gpt.with_options(timeout=short))
    assert [r["status"] for r in control.requests()] == [None, None]  # never answered


async def test_hang_with_delay_gives_up_with_504(claude: anthropic.AsyncAnthropic,
                                                 control: EmulatorControl) -> None:
    control.set_fault("anthropic", "hang", delay=0.2)
    with pytest.raises(anthropic.GatewayTimeoutError):
        await _claude_call(claude)


async def test_slow_answers_after_the_delay(claude: anthropic.AsyncAnthropic, control: EmulatorControl) -> None:
    control.set_fault("anthropic", "slow", delay=0.6)
    with pytest.raises(anthropic.APITimeoutError):  # a read timeout shorter than the delay fires first
        await _claude_call(claude.with_options(timeout=httpx2.Timeout(5.0, connect=1.0, read=0.2)))
    message = await _claude_call(claude)  # a patient client gets the answer
    assert message.content[0].type == "text"
    assert [r["status"] for r in control.requests()] == [200, 200]


async def test_malformed_json_raises_json_decode_error(claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI,
                                                       control: EmulatorControl) -> None:
    # Both SDKs let json.JSONDecodeError (a ValueError) escape on a truncated 200 body.
    control.set_fault("anthropic", "malformed_json")
    control.set_fault("openai", "malformed_json")
    with pytest.raises(json.JSONDecodeError):
        await _claude_call(claude)
    with pytest.raises(json.JSONDecodeError):
        await _chat_call(gpt)


async def test_empty_and_non_json_200_bodies(claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI,
                                             control: EmulatorControl) -> None:
    control.set_fault("anthropic", "empty_body", times=1)
    control.set_fault("openai", "not_json", times=1)
    with pytest.raises(json.JSONDecodeError):  # an empty application/json body
        await _claude_call(claude)
    page = await _chat_call(gpt)  # the SDKs hand back the text of a body that is not JSON
    assert isinstance(page, str) and page.startswith("<html>")


@pytest.mark.parametrize(("style", "headers"), [
    ("both", {"retry-after": "3", "retry-after-ms": "3000"}),
    ("seconds", {"retry-after": "3"}),
    ("ms", {"retry-after-ms": "3000"}),
])
async def test_rate_limited_retry_header_styles(claude: anthropic.AsyncAnthropic, control: EmulatorControl,
                                                style: str, headers: dict[str, str]) -> None:
    control.set_fault("anthropic", "rate_limited", retry_after=3, retry_header=style)
    with pytest.raises(anthropic.RateLimitError) as info:
        await _claude_call(claude)
    sent = info.value.response.headers
    assert {name: sent.get(name) for name in ("retry-after", "retry-after-ms") if name in sent} == headers


async def test_rate_limited_with_an_http_date(gpt: openai.AsyncOpenAI, control: EmulatorControl) -> None:
    control.set_fault("openai", "rate_limited", retry_after=30, retry_header="date")
    with pytest.raises(openai.RateLimitError) as info:
        await _chat_call(gpt)
    sent = info.value.response.headers
    assert "retry-after-ms" not in sent
    assert sent["retry-after"].endswith(" GMT")
    assert 25 < parse_retry_after(sent["retry-after"]) <= 30  # HTTP dates have whole seconds


async def test_refusal_empty_content_and_max_tokens_are_well_formed_answers(
    claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI, control: EmulatorControl
) -> None:
    schema = {"output_config": {"format": {"type": "json_schema", "schema": REPORT_SCHEMA}}}
    text = {"text": {"format": {"type": "json_schema", "name": "report", "schema": REPORT_SCHEMA, "strict": True}}}
    fmt = {"response_format": {"type": "json_schema", "json_schema": {"name": "report", "schema": REPORT_SCHEMA}}}

    control.set_fault("anthropic", "refusal")
    control.set_fault("openai", "refusal")
    refused = await _claude_call(claude, **schema)
    assert refused.stop_reason == "refusal"
    chat = (await _chat_call(gpt, **fmt)).choices[0].message
    assert chat.refusal and chat.content is None
    response = await gpt.responses.create(model=GPT, input=QUESTION, **text)
    assert response.output[0].content[0].type == "refusal" and response.output_text == ""

    control.set_fault("anthropic", "empty_content")
    control.set_fault("openai", "empty_content")
    assert (await _claude_call(claude, **schema)).content == []
    assert (await _chat_call(gpt, **fmt)).choices[0].message.content == ""
    assert (await gpt.responses.create(model=GPT, input=QUESTION, **text)).output == []

    control.set_fault("anthropic", "max_tokens")
    control.set_fault("openai", "max_tokens")
    cut = await _claude_call(claude, **schema)
    assert cut.stop_reason == "max_tokens" and not is_valid_json(cut.content[0].text)
    tool = await _claude_call(claude, tools=[TOOL], tool_choice={"type": "tool", "name": "file_ticket"})
    assert tool.stop_reason == "max_tokens" and tool.content[0].input == {}
    choice = (await _chat_call(gpt, **fmt)).choices[0]
    assert choice.finish_reason == "length" and not is_valid_json(choice.message.content)
    incomplete = await gpt.responses.create(model=GPT, input=QUESTION, **text)
    assert incomplete.status == "incomplete" and incomplete.incomplete_details.reason == "max_output_tokens"
    assert not is_valid_json(incomplete.output_text)


def is_valid_json(text: str | None) -> bool:
    try:
        json.loads(text or "")
    except json.JSONDecodeError:
        return False
    return True


async def test_echo_key_repeats_the_callers_key(claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI,
                                               control: EmulatorControl) -> None:
    control.set_fault("anthropic", "echo_key")
    control.set_fault("openai", "echo_key")
    with pytest.raises(anthropic.InternalServerError) as a_info:
        await _claude_call(claude)
    with pytest.raises(openai.InternalServerError) as o_info:
        await _chat_call(gpt)
    for info in (a_info, o_info):
        assert API_KEY in info.value.message and info.value.response.headers["x-echo-api-key"] == API_KEY


async def test_cut_connection_raises_connection_error(claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI,
                                                      control: EmulatorControl) -> None:
    control.set_fault("anthropic", "cut")
    control.set_fault("openai", "cut")
    with pytest.raises(anthropic.APIConnectionError) as a_info:
        await _claude_call(claude)
    with pytest.raises(openai.APIConnectionError) as o_info:
        await _chat_call(gpt)
    assert not isinstance(a_info.value, anthropic.APITimeoutError)
    assert not isinstance(o_info.value, openai.APITimeoutError)


async def test_refused_closes_the_connection_without_an_answer(claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI,
                                                                control: EmulatorControl) -> None:
    control.set_fault("anthropic", "refused", times=1)
    control.set_fault("openai", "refused", times=1)
    with pytest.raises(anthropic.APIConnectionError) as a_info:
        await _claude_call(claude)
    with pytest.raises(openai.APIConnectionError) as o_info:
        await _chat_call(gpt)
    for info in (a_info, o_info):
        assert not isinstance(info.value, (anthropic.APITimeoutError, openai.APITimeoutError))
        assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError), repr(info.value.__cause__)
        assert "without sending a response" in str(info.value.__cause__)
    assert [(r["mode"], r["status"]) for r in control.requests()] == [("refused", None)] * 2, "nothing was answered"
    assert (await _claude_call(claude)).content, "one request only: the next one is answered"


async def test_truncated_json_is_a_200_cut_mid_value_with_a_matching_content_length(
    claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI, control: EmulatorControl
) -> None:
    control.set_fault("anthropic", "truncated_json")
    control.set_fault("openai", "truncated_json")
    for raw_call in (claude.messages.with_raw_response.create(model=CLAUDE, max_tokens=256, messages=USER),  # type: ignore[arg-type]
                     gpt.chat.completions.with_raw_response.create(model=GPT, messages=USER)):  # type: ignore[arg-type]
        raw = await raw_call
        body = raw.http_response.content
        assert raw.http_response.status_code == 200 and int(raw.http_response.headers["content-length"]) == len(body)
        with pytest.raises(json.JSONDecodeError) as info:
            json.loads(body)
        assert "Unterminated string" in str(info.value), "cut inside a string value, not between two"
    with pytest.raises(json.JSONDecodeError):  # what each SDK lets escape on such a body
        await _claude_call(claude)
    with pytest.raises(json.JSONDecodeError):
        await _chat_call(gpt)


async def test_schema_invalid_is_well_formed_but_breaks_the_contract(
    claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI, control: EmulatorControl
) -> None:
    control.set_fault("anthropic", "schema_invalid")
    control.set_fault("openai", "schema_invalid")
    message = await _claude_call(claude, output_config={"format": {"type": "json_schema", "schema": REPORT_SCHEMA}})
    assert not is_valid(REPORT_SCHEMA, json.loads(message.content[0].text))
    tool_message = await _claude_call(claude, tools=[TOOL], tool_choice={"type": "tool", "name": "file_ticket"})
    assert isinstance(tool_message.content[0].input, dict)
    assert not is_valid(TOOL["input_schema"], tool_message.content[0].input)
    response = await gpt.responses.create(
        model=GPT, input=QUESTION,
        text={"format": {"type": "json_schema", "name": "report", "schema": REPORT_SCHEMA, "strict": True}},
    )
    assert not is_valid(REPORT_SCHEMA, json.loads(response.output_text))


# --------------------------------------------------------------- rule selection
async def test_model_rule_only_hits_that_model(claude: anthropic.AsyncAnthropic, control: EmulatorControl) -> None:
    control.set_fault("anthropic", "overloaded", model="claude-opus-4-1")
    with pytest.raises(anthropic.OverloadedError):
        await _claude_call(claude, model="claude-opus-4-1")
    assert (await _claude_call(claude)).content


async def test_model_rule_beats_provider_wide_rule(claude: anthropic.AsyncAnthropic,
                                                   control: EmulatorControl) -> None:
    control.set_fault("anthropic", "unavailable")
    control.set_fault("anthropic", "ok", model=CLAUDE)
    assert (await _claude_call(claude)).content
    with pytest.raises(anthropic.ServiceUnavailableError):
        await _claude_call(claude, model="claude-opus-4-1")


async def test_times_reverts_to_ok(claude: anthropic.AsyncAnthropic, control: EmulatorControl) -> None:
    control.set_fault("anthropic", "error_500", times=2)
    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError):
            await _claude_call(claude)
    assert (await _claude_call(claude)).content
    assert control.faults() == []
    assert [r["mode"] for r in control.requests()] == ["error_500", "error_500", "ok"]


async def test_request_log(claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI,
                           control: EmulatorControl) -> None:
    control.set_fault("openai", "rate_limited")
    await _claude_call(claude)
    with pytest.raises(openai.RateLimitError):
        await _chat_call(gpt)
    log = control.requests()
    assert [(r["provider"], r["model"], r["status"], r["mode"]) for r in log] == [
        ("anthropic", CLAUDE, 200, "ok"), ("openai", GPT, 429, "rate_limited")]
    assert log[0]["path"] == "/anthropic/v1/messages" and log[1]["seq"] > log[0]["seq"]
    assert control.requests(provider="openai") == log[1:]
    control.clear_requests()
    assert control.requests() == []


async def test_real_context_window_is_enforced(gpt: openai.AsyncOpenAI) -> None:
    assert context_window("gpt-4o-2024-08-06") == 128_000 and context_window("someone-elses-model") == 200_000
    huge = [{"role": "user", "content": "word " * 110_000}]  # ~137k tokens at 4 chars per token
    with pytest.raises(openai.BadRequestError) as info:
        await gpt.chat.completions.create(model="gpt-4o", messages=huge)  # type: ignore[arg-type]
    assert info.value.code == "context_length_exceeded"
    assert (await gpt.chat.completions.create(model="gpt-4.1", messages=huge)).choices  # type: ignore[arg-type]


def test_control_rejects_unknown_modes(control: EmulatorControl) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        control.set_fault("anthropic", "on_fire")
    with pytest.raises(ValueError, match="unknown provider"):
        control.set_fault("gemini", "ok")
    with pytest.raises(ValueError, match="unknown retry_header"):
        control.set_fault("anthropic", "rate_limited", retry_header="fortnight")


# ---------------------------------------------------------------------- black hole
async def test_black_hole_makes_connect_time_out(emulator: EmulatorHandle) -> None:
    with BlackHole() as hole:
        assert hole.url.startswith("http://127.0.0.1:")
        with pytest.raises(httpx.ConnectTimeout):  # how long it takes: bench/emulators.py
            httpx.get(hole.url, timeout=httpx.Timeout(5.0, connect=0.3))
        client = anthropic.AsyncAnthropic(api_key="k", base_url=hole.url, max_retries=0,
                                          timeout=httpx2.Timeout(5.0, connect=0.3))
        with pytest.raises(anthropic.APITimeoutError):
            await _claude_call(client)
        await client.close()


# ---------------------------------------------------------------------- schema_fill
class _Line(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")
    qty: int = Field(ge=1, le=5)
    price: float = Field(gt=0, lt=1, multiple_of=0.01)


class _Node(BaseModel):
    label: str
    children: list[_Node] = []
    parent: Optional[_Node] = None


class _Order(BaseModel):
    kind: Literal["retail", "wholesale"]
    lines: list[_Line] = Field(min_length=1, max_length=3)
    tree: _Node
    note: Optional[str] = None


TRICKY_SCHEMAS: list[Any] = [
    _Order.model_json_schema(),
    {"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "required": ["a"],
     "additionalProperties": False},
    {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 5}]},
    {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": 10}]},
    {"allOf": [{"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
               {"properties": {"y": {"const": 3}}, "required": ["y"]}]},
    {"type": "array", "items": {"enum": ["r", "g", "b"]}, "uniqueItems": True, "minItems": 3},
    {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True, "minItems": 2},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
    {"type": "integer", "multipleOf": 7, "minimum": 100, "maximum": 120},
    {"type": "string", "minLength": 40, "maxLength": 41},
    {"type": "object", "properties": {"d": {"type": "string", "format": "date"},
                                      "t": {"type": "string", "format": "date-time"},
                                      "u": {"type": "string", "format": "uri"},
                                      "e": {"type": "string", "format": "email"}}, "required": ["d", "t", "u", "e"]},
    {"$schema": "http://json-schema.org/draft-07/schema#",
     "definitions": {"p": {"type": "object", "properties": {"n": {"$ref": "#/definitions/p"}}}},
     "$ref": "#/definitions/p"},
    {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["next"]},
    {"type": "object", "minProperties": 3, "additionalProperties": {"type": "integer"}},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string", "format": "date"}], "items": False,
     "minItems": 2},
    {"type": ["null", "integer"]},
    {"const": None},
    {"enum": [1, "two", None]},
    {"type": "string", "pattern": "^[a-z]+(-[a-z]+)*$", "maxLength": 12},
    {"type": "boolean"},
    {},
]


@pytest.mark.parametrize("schema", TRICKY_SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_schema_fill_validates(schema: Any) -> None:
    value = instance_for(schema, QUESTION)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)
    assert instance_for(schema, QUESTION) == value  # deterministic
    if schema:  # `{}` accepts everything, so nothing can violate it
        assert not is_valid(schema, invalid_instance_for(schema, QUESTION))


def test_schema_fill_uses_the_seed() -> None:
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
    assert any(word in instance_for(schema, QUESTION)["summary"] for word in QUESTION.split())
