"""Anthropic Messages and OpenAI Chat Completions / Responses emulators.

They speak the real wire formats, so the official SDKs parse every answer and every
error exactly as they would against the real services. Answers are built from the
output contract in the request (a JSON schema or a forced tool), so whatever schema a
skill declares validates. Faults come from the `FaultBook` (see faults.py).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Literal

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from aios.emulators import sse
from aios.emulators.base import CutResponse, RefusedResponse
from aios.emulators.faults import DEFAULT_HANG_SECONDS, DEFAULT_RETRY_AFTER, DEFAULT_SLOW_DELAY, EmulatorState
from aios.emulators.schema_fill import instance_for, invalid_instance_for

# Known context windows; a dated snapshot ("claude-sonnet-4-5-20250929") uses its base entry.
MODEL_CONTEXT_WINDOWS: dict[str, int] = {
    "claude-opus-4-1": 200_000,
    "claude-opus-4": 200_000,
    "claude-opus-4-5": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-sonnet-4-5": 200_000,
    "claude-haiku-4-5": 200_000,
    "claude-3-5-haiku": 200_000,
    "gpt-5": 400_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "gpt-4.1": 1_000_000,
    "gpt-4.1-mini": 1_000_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}
DEFAULT_CONTEXT_WINDOW = 200_000  # unknown models are accepted: users configure their own names

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


_REFUSAL = "I'm sorry, but I can't help with that request."
_NOT_JSON_PAGE = "<html><head><title>Sign in to continue</title></head><body>Wi-Fi login required</body></html>"


def context_window(model: str) -> int:
    """Window for `model`: exact entry, else the longest entry it is a dated variant of."""
    if model in MODEL_CONTEXT_WINDOWS:
        return MODEL_CONTEXT_WINDOWS[model]
    bases = [name for name in MODEL_CONTEXT_WINDOWS if model.startswith(name + "-")]
    return MODEL_CONTEXT_WINDOWS[max(bases, key=len)] if bases else DEFAULT_CONTEXT_WINDOW


def estimate_tokens(*parts: Any) -> int:
    """Rough but consistent: four characters of the JSON encoding per token."""
    chars = len(json.dumps(parts, ensure_ascii=False, default=str))
    return max(1, math.ceil(chars / 4))


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _text_of(content: Any) -> str:
    """Plain text of a message content in any of the providers' shapes."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(filter(None, (_text_of(part) for part in content)))
    if isinstance(content, dict):
        for key in ("text", "content", "output"):
            if key in content:
                return _text_of(content[key])
    return ""


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return _text_of(message.get("content"))
    return ""


@dataclass
class Contract:
    """What the caller asked the answer to look like."""

    kind: Literal["text", "json", "tool"]
    schema: Any = None
    tool_name: str | None = None

    def answer(self, seed: str, model: str, *, invalid: bool = False) -> Any:
        if self.kind == "text":
            words = " ".join(seed.split()[:12])
            return f"Emulated answer from {model}." + (f" You asked: {words}" if words else "")
        if invalid:
            return invalid_instance_for(self.schema, seed, want_object=self.kind == "tool")
        return instance_for(self.schema, seed)


_JSON_OBJECT = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


class RequestProblem(Exception):
    """The request itself is wrong (the real API would answer 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# ---------------------------------------------------------------------------- wires
class Wire:
    """One API surface: how to authenticate, read the contract, and write answers/errors."""

    provider: str
    id_header: str

    def error(self, status: int, etype: str, message: str, *, code: str | None = None,
              param: str | None = None, headers: dict[str, str] | None = None) -> Response:
        raise NotImplementedError

    def check_auth(self, request: Request) -> Response | None:
        raise NotImplementedError

    def validate(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def contract(self, payload: dict[str, Any]) -> Contract:
        raise NotImplementedError

    def seed(self, payload: dict[str, Any]) -> str:
        raise NotImplementedError

    def input_tokens(self, payload: dict[str, Any]) -> int:
        raise NotImplementedError

    def success(self, payload: dict[str, Any], model: str, contract: Contract, value: Any, tokens: int) -> Any:
        raise NotImplementedError

    def context_error(self, model: str, tokens: int, window: int) -> Response:
        raise NotImplementedError

    def fault(self, mode: str, model: str, retry_after: float | None, retry_header: str = "both") -> Response | None:
        """The error answer for an error mode, or None for modes that answer 200."""
        raise NotImplementedError

    def api_key(self, request: Request) -> str:
        raise NotImplementedError

    def spoil(self, body: dict[str, Any], mode: str, contract: Contract) -> dict[str, Any]:
        """A well-formed answer gone wrong in the model: `refusal`, `empty_content`, `max_tokens`."""
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {self.id_header: _new_id("req_")}

    @staticmethod
    def _retry_headers(retry_after: float, style: str = "both") -> dict[str, str]:
        """`style`: both headers, `seconds` (retry-after), `ms` (retry-after-ms) or `date` (an HTTP date)."""
        text = str(int(retry_after)) if float(retry_after).is_integer() else f"{retry_after:g}"
        seconds, millis = {"retry-after": text}, {"retry-after-ms": str(int(retry_after * 1000))}
        if style == "date":  # whole seconds only, so a client reads a little less than `retry_after`
            return {"retry-after": formatdate(time.time() + retry_after, usegmt=True)}
        return {"seconds": seconds, "ms": millis}.get(style, {**seconds, **millis})


class AnthropicWire(Wire):
    provider = "anthropic"
    id_header = "request-id"
    _FAULTS: dict[str, tuple[int, str, str]] = {
        "overloaded": (529, "overloaded_error", "Overloaded"),
        "error_500": (500, "api_error", "Internal server error"),
        "unavailable": (503, "api_error", "Service unavailable"),
        "gateway_timeout": (504, "timeout_error", "Request timed out"),
        "rate_limited": (429, "rate_limit_error", "This request would exceed the rate limit for your organization "
                         "of 50 requests per minute. Please try again later."),
        "bad_request": (400, "invalid_request_error", "messages: emulated invalid request (fault injection)"),
        "unauthorized": (401, "authentication_error", "invalid x-api-key"),
        "forbidden": (403, "permission_error", "Your API key does not have permission to use the specified resource."),
    }

    def error(self, status: int, etype: str, message: str, *, code: str | None = None,
              param: str | None = None, headers: dict[str, str] | None = None) -> Response:
        rid = _new_id("req_")
        body = {"type": "error", "error": {"type": etype, "message": message}, "request_id": rid}
        return JSONResponse(body, status, headers={"request-id": rid, **(headers or {})})

    def api_key(self, request: Request) -> str:
        return request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")

    def check_auth(self, request: Request) -> Response | None:
        key = self.api_key(request)
        if not key.strip():
            return self.error(401, "authentication_error", "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            return self.error(400, "invalid_request_error", "anthropic-version: header is required")
        return None

    def validate(self, payload: dict[str, Any]) -> None:
        if not isinstance(payload.get("model"), str) or not payload["model"]:
            raise RequestProblem("model: Field required")
        if not isinstance(payload.get("max_tokens"), int) or payload["max_tokens"] < 1:
            raise RequestProblem("max_tokens: Field required")
        if not isinstance(payload.get("messages"), list) or not payload["messages"]:
            raise RequestProblem("messages: Field required")

    def contract(self, payload: dict[str, Any]) -> Contract:
        tools = [t for t in payload.get("tools") or [] if isinstance(t, dict) and "name" in t]
        choice = payload.get("tool_choice") or {}
        if choice.get("type") == "tool":
            tool = next((t for t in tools if t["name"] == choice.get("name")), None)
            if tool is None:
                raise RequestProblem(f"tool_choice: tool {choice.get('name')!r} not found in tools")
            return Contract("tool", tool.get("input_schema") or {"type": "object"}, tool["name"])
        if choice.get("type") == "any" and tools:
            return Contract("tool", tools[0].get("input_schema") or {"type": "object"}, tools[0]["name"])
        fmt = (payload.get("output_config") or {}).get("format") or payload.get("output_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            return Contract("json", fmt.get("schema") or {})
        return _structured_output_tool(payload, tools) or Contract("text")  # agent CLIs: see the end of file

    def seed(self, payload: dict[str, Any]) -> str:
        return _last_user_text(payload.get("messages"))

    def input_tokens(self, payload: dict[str, Any]) -> int:
        return estimate_tokens(payload.get("system"), payload.get("messages"), payload.get("tools"),
                               payload.get("output_config"))

    def success(self, payload: dict[str, Any], model: str, contract: Contract, value: Any, tokens: int) -> Any:
        if contract.kind == "tool":
            block: dict[str, Any] = {"type": "tool_use", "id": _new_id("toolu_"), "name": contract.tool_name,
                                     "input": value}
        else:
            block = {"type": "text", "text": value if contract.kind == "text" else json.dumps(value)}
        return {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [block],
            "stop_reason": "tool_use" if contract.kind == "tool" else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": tokens,
                "output_tokens": estimate_tokens(block.get("text", block.get("input"))),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }

    def context_error(self, model: str, tokens: int, window: int) -> Response:
        return self.error(400, "invalid_request_error", f"prompt is too long: {tokens} tokens > {window} maximum")

    def fault(self, mode: str, model: str, retry_after: float | None, retry_header: str = "both") -> Response | None:
        if mode == "error_502":
            return Response(_HTML_502, 502, media_type="text/html")
        if mode == "not_found":
            return self.error(404, "not_found_error", f"model: {model}")
        if mode not in self._FAULTS:
            return None
        status, etype, message = self._FAULTS[mode]
        extra = self._retry_headers(retry_after or DEFAULT_RETRY_AFTER, retry_header) if mode == "rate_limited" else None
        return self.error(status, etype, message, headers=extra)

    def spoil(self, body: dict[str, Any], mode: str, contract: Contract) -> dict[str, Any]:
        block = body["content"][0]
        if mode == "refusal":
            body["stop_reason"], body["content"] = "refusal", [{"type": "text", "text": _REFUSAL}]
        elif mode == "empty_content":
            body["content"] = []
        elif mode == "max_tokens":
            body["stop_reason"] = "max_tokens"
            if block["type"] == "tool_use":
                block["input"] = {}  # the tool call stopped before its input was written
            else:
                block["text"] = block["text"][: len(block["text"]) // 2]
        return body


class OpenAIWire(Wire):
    """Shared by Chat Completions and Responses: same auth and error envelope."""

    provider = "openai"
    id_header = "x-request-id"
    input_param = "messages"

    def error(self, status: int, etype: str, message: str, *, code: str | None = None,
              param: str | None = None, headers: dict[str, str] | None = None) -> Response:
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return JSONResponse(body, status, headers={**self.headers(), **(headers or {})})

    def headers(self) -> dict[str, str]:
        return {"x-request-id": _new_id("req_"), "openai-version": "2020-10-01", "openai-processing-ms": "1"}

    def api_key(self, request: Request) -> str:
        return request.headers.get("authorization", "").removeprefix("Bearer ")

    def check_auth(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return self.error(401, "invalid_request_error",
                              "You didn't provide an API key. You need to provide your API key in an Authorization "
                              "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        return None

    def context_error(self, model: str, tokens: int, window: int) -> Response:
        message = (f"This model's maximum context length is {window} tokens. However, your messages resulted in "
                   f"{tokens} tokens. Please reduce the length of the messages.")
        return self.error(400, "invalid_request_error", message, code="context_length_exceeded",
                          param=self.input_param)

    def fault(self, mode: str, model: str, retry_after: float | None, retry_header: str = "both") -> Response | None:
        wait = retry_after or DEFAULT_RETRY_AFTER
        faults: dict[str, tuple[int, str, str | None, str]] = {
            "overloaded": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
            "error_500": (500, "server_error", None,
                          "The server had an error while processing your request. Sorry about that!"),
            "unavailable": (503, "server_error", "service_unavailable", "Service Unavailable."),
            "gateway_timeout": (504, "server_error", "timeout", "Gateway timeout. The request took too long."),
            "rate_limited": (429, "requests", "rate_limit_exceeded",
                             f"Rate limit reached for {model} in organization org-emulator on requests per min "
                             f"(RPM): Limit 500, Used 500, Requested 1. Please try again in {wait:g}s."),
            "bad_request": (400, "invalid_request_error", None, "Emulated invalid request (fault injection)."),
            "unauthorized": (401, "invalid_request_error", "invalid_api_key",
                             "Incorrect API key provided: sk-****. You can find your API key at "
                             "https://platform.openai.com/account/api-keys."),
            "forbidden": (403, "invalid_request_error", None, "You are not allowed to sample from this model"),
            "not_found": (404, "invalid_request_error", "model_not_found",
                          f"The model `{model}` does not exist or you do not have access to it."),
        }
        if mode == "error_502":
            return Response(_HTML_502, 502, media_type="text/html")
        if mode not in faults:
            return None
        status, etype, code, message = faults[mode]
        extra = self._retry_headers(wait, retry_header) if mode == "rate_limited" else None
        return self.error(status, etype, message, code=code, headers=extra)

    @staticmethod
    def _function_tools(payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Function tools as {name, parameters}, from either API's tool shape."""
        out = []
        for tool in payload.get("tools") or []:
            if isinstance(tool, dict) and tool.get("type") == "function":
                spec = tool.get("function", tool)
                out.append({"name": spec.get("name"), "parameters": spec.get("parameters") or {"type": "object"}})
        return out

    def _tool_contract(self, payload: dict[str, Any]) -> Contract | None:
        tools = self._function_tools(payload)
        choice = payload.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or choice).get("name")
            tool = next((t for t in tools if t["name"] == name), None)
            if tool is None:
                raise RequestProblem(f"Invalid value for 'tool_choice': no function named {name!r}.", "tool_choice")
            return Contract("tool", tool["parameters"], name)
        if choice == "required" and tools:
            return Contract("tool", tools[0]["parameters"], tools[0]["name"])
        return None


class OpenAIChatWire(OpenAIWire):
    def validate(self, payload: dict[str, Any]) -> None:
        if not isinstance(payload.get("model"), str) or not payload["model"]:
            raise RequestProblem("you must provide a model parameter", "model")
        if not isinstance(payload.get("messages"), list) or not payload["messages"]:
            raise RequestProblem("'messages' must contain at least one message", "messages")

    def contract(self, payload: dict[str, Any]) -> Contract:
        tool = self._tool_contract(payload)
        if tool:
            return tool
        fmt = payload.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return Contract("json", (fmt.get("json_schema") or {}).get("schema") or {})
        if fmt.get("type") == "json_object":
            return Contract("json", _JSON_OBJECT)
        return Contract("text")

    def seed(self, payload: dict[str, Any]) -> str:
        return _last_user_text(payload.get("messages"))

    def input_tokens(self, payload: dict[str, Any]) -> int:
        return estimate_tokens(payload.get("messages"), payload.get("tools"), payload.get("response_format"))

    def success(self, payload: dict[str, Any], model: str, contract: Contract, value: Any, tokens: int) -> Any:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if contract.kind == "tool":
            arguments = json.dumps(value)
            message["tool_calls"] = [{"id": _new_id("call_"), "type": "function",
                                      "function": {"name": contract.tool_name, "arguments": arguments}}]
            output = arguments
        else:
            output = message["content"] = value if contract.kind == "text" else json.dumps(value)
        completion = estimate_tokens(output)
        return {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if contract.kind == "tool" else "stop"}],
            "usage": {
                "prompt_tokens": tokens,
                "completion_tokens": completion,
                "total_tokens": tokens + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_aios_emulator",
        }


    def spoil(self, body: dict[str, Any], mode: str, contract: Contract) -> dict[str, Any]:
        choice = body["choices"][0]
        message = choice["message"]
        if mode == "refusal":
            message.update(content=None, refusal=_REFUSAL, tool_calls=None)
        elif mode == "empty_content":
            message.update(content="", tool_calls=None)
        elif mode == "max_tokens":
            choice["finish_reason"] = "length"
            if message.get("content"):
                message["content"] = message["content"][: len(message["content"]) // 2]
            for call in message.get("tool_calls") or []:
                call["function"]["arguments"] = call["function"]["arguments"][: len(call["function"]["arguments"]) // 2]
        return body


class OpenAIResponsesWire(OpenAIWire):
    input_param = "input"

    def validate(self, payload: dict[str, Any]) -> None:
        if not isinstance(payload.get("model"), str) or not payload["model"]:
            raise RequestProblem("Missing required parameter: 'model'.", "model")

    def contract(self, payload: dict[str, Any]) -> Contract:
        tool = self._tool_contract(payload)
        if tool:
            return tool
        fmt = (payload.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            return Contract("json", fmt.get("schema") or {})
        if fmt.get("type") == "json_object":
            return Contract("json", _JSON_OBJECT)
        return Contract("text")

    def seed(self, payload: dict[str, Any]) -> str:
        return _last_user_text(payload.get("input")) or _text_of(payload.get("instructions"))

    def input_tokens(self, payload: dict[str, Any]) -> int:
        return estimate_tokens(payload.get("instructions"), payload.get("input"), payload.get("tools"),
                               payload.get("text"))

    def context_error(self, model: str, tokens: int, window: int) -> Response:
        message = (f"Your input exceeds the context window of this model ({tokens} tokens > {window} maximum). "
                   "Please adjust your input and try again.")
        return self.error(400, "invalid_request_error", message, code="context_length_exceeded", param="input")

    def success(self, payload: dict[str, Any], model: str, contract: Contract, value: Any, tokens: int) -> Any:
        if contract.kind == "tool":
            output = json.dumps(value)
            item: dict[str, Any] = {"type": "function_call", "id": _new_id("fc_"), "call_id": _new_id("call_"),
                                    "name": contract.tool_name, "arguments": output, "status": "completed"}
        else:
            output = value if contract.kind == "text" else json.dumps(value)
            item = {"type": "message", "id": _new_id("msg_"), "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": output, "annotations": [], "logprobs": []}]}
        completion = estimate_tokens(output)
        now = time.time()
        return {
            "id": _new_id("resp_"),
            "object": "response",
            "created_at": int(now),
            "completed_at": int(now),
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": payload.get("instructions"),
            "max_output_tokens": payload.get("max_output_tokens"),
            "model": model,
            "output": [item],
            "parallel_tool_calls": bool(payload.get("parallel_tool_calls", True)),
            "previous_response_id": payload.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": bool(payload.get("store", True)),
            "temperature": payload.get("temperature", 1.0),
            "text": payload.get("text") or {"format": {"type": "text"}},
            "tool_choice": payload.get("tool_choice", "auto"),
            "tools": payload.get("tools") or [],
            "top_p": payload.get("top_p", 1.0),
            "truncation": payload.get("truncation", "disabled"),
            "usage": {
                "input_tokens": tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": tokens + completion,
            },
            "user": None,
            "metadata": payload.get("metadata") or {},
        }

    def spoil(self, body: dict[str, Any], mode: str, contract: Contract) -> dict[str, Any]:
        item = body["output"][0]
        if mode == "refusal":
            body["output"] = [{"type": "message", "id": _new_id("msg_"), "status": "completed", "role": "assistant",
                               "content": [{"type": "refusal", "refusal": _REFUSAL}]}]
        elif mode == "empty_content":
            body["output"] = []
        elif mode == "max_tokens":
            body["status"], body["incomplete_details"] = "incomplete", {"reason": "max_output_tokens"}
            item["status"] = "incomplete"
            if item["type"] == "function_call":
                item["arguments"] = item["arguments"][: len(item["arguments"]) // 2]
            else:
                part = item["content"][0]
                part["text"] = part["text"][: len(part["text"]) // 2]
        return body


# ------------------------------------------------------------ unusual responses
class HangResponse(Response):
    """Holds the request open without a byte of answer until the client gives up.

    Returns as soon as the client disconnects; after `seconds` it gives up and sends
    `fallback`. When the server shuts down and cancels it, it drops the connection
    (as a dying server would) rather than letting uvicorn answer a 500.
    """

    def __init__(self, seconds: float, fallback: Response) -> None:
        super().__init__(status_code=fallback.status_code)
        self.seconds = seconds
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with anyio.move_on_after(self.seconds):
                while (await receive())["type"] != "http.disconnect":
                    pass
                return
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"2")]})
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
            return  # unfinished body: uvicorn closes the transport
        await self.fallback(scope, receive, send)


# ------------------------------------------------------------------- handlers
async def _handle(request: Request, state: EmulatorState, wire: Wire) -> Response:
    entry = state.requests.record(wire.provider, "", request.url.path)
    response = await _respond(request, state, wire, entry)
    entry["status"] = None if isinstance(response, (HangResponse, RefusedResponse)) else response.status_code
    return response


def _schema_name(payload: dict[str, Any]) -> str | None:
    """The name of the output schema a request asks for (a probe, a skill's contract, memory facts), for the log."""
    for found in (
        (payload.get("tool_choice") or {}).get("name") if isinstance(payload.get("tool_choice"), dict) else None,
        ((payload.get("response_format") or {}).get("json_schema") or {}).get("name") if isinstance(payload.get("response_format"), dict) else None,
        ((payload.get("text") or {}).get("format") or {}).get("name") if isinstance(payload.get("text"), dict) else None,
    ):
        if isinstance(found, str):
            return found
    # Anthropic structured outputs carry no name: the schema's top-level property names, joined by "+".
    schema = ((payload.get("output_config") or {}).get("format") or {}).get("schema") if isinstance(payload.get("output_config"), dict) else None
    if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
        return "+".join(sorted(schema["properties"]))
    return None


async def _respond(request: Request, state: EmulatorState, wire: Wire, entry: dict[str, Any]) -> Response:
    try:
        payload = json.loads(await request.body())
        if not isinstance(payload, dict):
            raise ValueError("body must be a JSON object")
    except ValueError:
        return wire.error(400, "invalid_request_error", "We could not parse the JSON body of your request.")
    model = str(payload.get("model") or "")
    entry["model"] = model
    entry["stream"] = bool(payload.get("stream"))
    entry["schema"] = _schema_name(payload)
    if (denied := wire.check_auth(request)) is not None:
        return denied

    decision = state.faults.take(wire.provider, model)
    mode = entry["mode"] = decision.mode
    if mode == "hang":
        fallback = wire.fault("gateway_timeout", model, None)
        assert fallback is not None
        return HangResponse(decision.delay or DEFAULT_HANG_SECONDS, fallback)
    if mode == "refused":
        return RefusedResponse()
    if mode == "slow":
        await anyio.sleep(decision.delay if decision.delay is not None else DEFAULT_SLOW_DELAY)
    if mode == "echo_key":  # a careless upstream: the caller's key back in the message and a header
        key = wire.api_key(request)
        return wire.error(500, "api_error", f"upstream rejected the request made with key {key}",
                          headers={"x-echo-api-key": key})
    if mode == "empty_body":
        return Response(b"", 200, headers=wire.headers(), media_type="application/json")
    if mode == "not_json":
        return Response(_NOT_JSON_PAGE, 200, headers=wire.headers(), media_type="text/html")
    if (failure := wire.fault(mode, model, decision.retry_after, decision.retry_header)) is not None:
        return failure

    window = context_window(model)
    try:
        wire.validate(payload)
        contract = wire.contract(payload)
    except RequestProblem as problem:
        return wire.error(400, "invalid_request_error", str(problem), param=problem.param)
    tokens = wire.input_tokens(payload)
    if mode == "context_length":
        return wire.context_error(model, max(tokens, window + 1), window)
    if tokens > window:
        return wire.context_error(model, tokens, window)

    value = contract.answer(wire.seed(payload), model, invalid=mode == "schema_invalid")
    body = wire.success(payload, model, contract, value, tokens)
    if mode in ("refusal", "empty_content", "max_tokens"):
        body = wire.spoil(body, mode, contract)
    data = json.dumps(body).encode()
    headers = wire.headers()
    if payload.get("stream"):  # streaming forms and their faults: aios/emulators/sse.py
        return sse.stream_response(_SSE_API[type(wire)], json.loads(data), payload, headers, mode)
    if mode == "malformed_json":
        return Response(data[: len(data) * 2 // 3], 200, headers=headers, media_type="application/json")
    if mode == "truncated_json":
        return Response(cut_mid_value(data), 200, headers=headers, media_type="application/json")
    if mode == "cut":
        return CutResponse(data, 200, headers=headers, media_type="application/json")
    return Response(data, 200, headers=headers, media_type="application/json")


_STRING_VALUE = re.compile(rb':\s*"((?:[^"\\]|\\.){2,})"')


def cut_mid_value(data: bytes) -> bytes:
    """The JSON text up to the middle of its longest string value: what a body cut mid-value looks like."""
    longest = max(_STRING_VALUE.finditer(data), key=lambda m: m.end(1) - m.start(1), default=None)
    if longest is None:
        return data[: len(data) // 2]
    return data[: (longest.start(1) + longest.end(1)) // 2]


def _not_found(wire: Wire, etype: str) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"][len(scope.get("root_path", "")):] or "/"  # the path as the real API sees it
        response = wire.error(404, etype, f"Invalid URL ({scope.get('method')} {path})")
        await response(scope, receive, send)

    return app


def anthropic_app(state: EmulatorState) -> Router:
    """Mount under /anthropic: the SDK base_url is http://HOST:PORT/anthropic."""
    wire = AnthropicWire()

    async def messages(request: Request) -> Response:
        return await _handle(request, state, wire)

    async def count_tokens(request: Request) -> Response:
        entry = state.requests.record(wire.provider, "", request.url.path)
        try:
            payload = json.loads(await request.body())
            entry["model"] = str(payload.get("model") or "")
        except ValueError:
            payload = None
        response = wire.check_auth(request) or (
            wire.error(400, "invalid_request_error", "We could not parse the JSON body of your request.")
            if not isinstance(payload, dict) else JSONResponse({"input_tokens": wire.input_tokens(payload)})
        )
        entry["status"] = response.status_code
        return response

    async def models(request: Request) -> Response:
        if (denied := wire.check_auth(request)) is not None:
            return denied
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z",
                 "lifecycle": "active", "max_input_tokens": w}
                for m, w in MODEL_CONTEXT_WINDOWS.items() if m.startswith("claude")]
        return JSONResponse({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})

    return Router(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ],
        default=_not_found(wire, "not_found_error"),
    )


def openai_app(state: EmulatorState) -> Router:
    """Mount under /openai: the SDK base_url is http://HOST:PORT/openai/v1."""
    chat, responses = OpenAIChatWire(), OpenAIResponsesWire()

    async def chat_completions(request: Request) -> Response:
        return await _handle(request, state, chat)

    async def create_response(request: Request) -> Response:
        return await _handle(request, state, responses)

    async def models(request: Request) -> Response:
        if (denied := chat.check_auth(request)) is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 1735689600, "owned_by": "openai"}
                for m in MODEL_CONTEXT_WINDOWS if not m.startswith("claude")]
        return JSONResponse({"object": "list", "data": data}, headers=chat.headers())

    return Router(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", create_response, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ],
        default=_not_found(chat, "invalid_request_error"),
    )


# ------------------------------------------------------- agent CLIs (Claude Code, Codex)
_SSE_API: dict[type, sse.Api] = {AnthropicWire: "anthropic", OpenAIResponsesWire: "responses",
                                 OpenAIChatWire: "chat"}

# Claude Code's `--json-schema` offers this tool instead of `output_config`; the model must call it once.
STRUCTURED_OUTPUT_TOOL = "StructuredOutput"


def _structured_output_tool(payload: dict[str, Any], tools: list[dict[str, Any]]) -> Contract | None:
    """Behave as a model does in Claude Code's loop: call StructuredOutput, then finish with text.

    After the tool's result comes back (the last user turn holds a `tool_result`), answer in text.
    """
    tool = next((t for t in tools if t["name"] == STRUCTURED_OUTPUT_TOOL), None)
    if tool is None:
        return None
    for message in reversed(payload.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
                return Contract("text")
            break
    return Contract("tool", tool.get("input_schema") or {"type": "object"}, STRUCTURED_OUTPUT_TOOL)
