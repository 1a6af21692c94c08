"""Server-sent-event forms of finished answers, as the real streaming APIs send them.

The emulator builds one finished object (an Anthropic `message`, an OpenAI Responses
`response`, a Chat Completions `chat.completion`) and, when the request says `stream: true`,
these functions replay it as the real event sequence. Agent CLIs (Claude Code, Codex) only
ever stream, so faults must reach them here too: `cut` sends half the events and drops the
connection; `malformed_json` sends a broken event and ends the stream cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Api = Literal["anthropic", "responses", "chat"]
Event = tuple[str | None, Any]  # (event name or None, data: a JSON-able value or a raw string)
_CHUNK = 24  # characters per text delta: several deltas per answer, as real streams have


def _pieces(text: str) -> list[str]:
    return [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]


# ------------------------------------------------------------------ Anthropic
def anthropic_events(message: dict[str, Any]) -> list[Event]:
    """message_start, per block start/delta.../stop, message_delta (stop reason, usage), message_stop."""
    usage = message.get("usage") or {}
    head = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1}}
    events: list[Event] = [("message_start", {"type": "message_start", "message": head}),
                           ("ping", {"type": "ping"})]
    for index, block in enumerate(message.get("content") or []):
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(json.dumps(block["input"]))]
        else:
            start = {**block, "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block.get("text", ""))]
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")},
        "usage": {"output_tokens": usage.get("output_tokens", 0)},
    }))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


# -------------------------------------------------------------- OpenAI Responses
def responses_events(response: dict[str, Any]) -> list[Event]:
    """response.created / in_progress, each output item with its deltas, response.completed."""
    pending = {**response, "status": "in_progress", "output": [], "usage": None, "completed_at": None}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": pending},
                                    {"type": "response.in_progress", "response": pending}]
    for out_index, item in enumerate(response.get("output") or []):
        if item["type"] == "function_call":
            events.append({"type": "response.output_item.added", "output_index": out_index,
                           "item": {**item, "arguments": "", "status": "in_progress"}})
            for piece in _pieces(item["arguments"]):
                events.append({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                               "output_index": out_index, "delta": piece})
            events.append({"type": "response.function_call_arguments.done", "item_id": item["id"],
                           "output_index": out_index, "arguments": item["arguments"]})
        else:
            events.append({"type": "response.output_item.added", "output_index": out_index,
                           "item": {**item, "content": [], "status": "in_progress"}})
            for c_index, part in enumerate(item.get("content") or []):
                text = part.get("text", "")
                base = {"item_id": item["id"], "output_index": out_index, "content_index": c_index}
                events.append({"type": "response.content_part.added", **base, "part": {**part, "text": ""}})
                for piece in _pieces(text):
                    events.append({"type": "response.output_text.delta", **base, "delta": piece, "logprobs": []})
                events.append({"type": "response.output_text.done", **base, "text": text, "logprobs": []})
                events.append({"type": "response.content_part.done", **base, "part": part})
        events.append({"type": "response.output_item.done", "output_index": out_index, "item": item})
    events.append({"type": "response.completed", "response": response})
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return [(event["type"], event) for event in events]


# ---------------------------------------------------------- OpenAI Chat Completions
def chat_events(completion: dict[str, Any], *, include_usage: bool = False) -> list[Event]:
    """chat.completion.chunk per delta, the finish chunk, an optional usage chunk, then [DONE]."""
    base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint") if k in completion}
    base["object"] = "chat.completion.chunk"
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Event:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            body["usage"] = None
        return (None, body)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    for call_index, call in enumerate(message.get("tool_calls") or []):
        events.append(chunk({"tool_calls": [{"index": call_index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        events += [chunk({"tool_calls": [{"index": call_index, "function": {"arguments": p}}]})
                   for p in _pieces(call["function"]["arguments"])]
    if message.get("content"):
        events += [chunk({"content": p}) for p in _pieces(message["content"])]
    events.append(chunk({}, choice.get("finish_reason")))
    if include_usage:
        events.append((None, {**base, "choices": [], "usage": completion.get("usage")}))
    events.append((None, "[DONE]"))
    return events


# --------------------------------------------------------------------- wire form
def encode(event: Event) -> bytes:
    name, data = event
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode()


def events_for(api: Api, answer: dict[str, Any], payload: dict[str, Any]) -> list[Event]:
    if api == "anthropic":
        return anthropic_events(answer)
    if api == "responses":
        return responses_events(answer)
    return chat_events(answer, include_usage=bool((payload.get("stream_options") or {}).get("include_usage")))


class EventStreamResponse(Response):
    """Sends SSE frames one by one; `cut=True` stops after half of them and drops the connection."""

    media_type = "text/event-stream"

    def __init__(self, frames: list[bytes], headers: dict[str, str] | None = None, *, cut: bool = False) -> None:
        super().__init__(status_code=200, headers={"cache-control": "no-cache", **(headers or {})})
        # Streams have no content-length: drop the one Response computed for the empty body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.frames = frames
        self.cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        frames = self.frames[: max(1, len(self.frames) // 2)] if self.cut else self.frames
        for frame in frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if self.cut:
            return  # no final frame: uvicorn closes the transport mid-stream
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def stream_response(api: Api, answer: dict[str, Any], payload: dict[str, Any], headers: dict[str, str],
                    mode: str) -> Response:
    """The streamed form of `answer`, with the stream faults applied (`cut`, `malformed_json`/`truncated_json`)."""
    frames = [encode(e) for e in events_for(api, answer, payload)]
    if mode == "cut":
        return EventStreamResponse(frames, headers, cut=True)
    if mode in ("malformed_json", "truncated_json"):
        broken = frames[1][: len(frames[1]) // 2].rstrip(b"\n") + b"\n\n"
        return EventStreamResponse([frames[0], broken], headers)
    return EventStreamResponse(frames, headers)


def iter_events(raw: bytes) -> Iterator[tuple[str | None, str]]:
    """Parse an SSE body back into (event, data) pairs (for tests and request logs)."""
    for block in raw.decode().split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            yield name, "\n".join(data)
