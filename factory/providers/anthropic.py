"""Anthropic Messages through the official SDK, with a forced tool call for structured output.

The batch schema is the ``input_schema`` of one tool, and ``tool_choice`` forces that tool, so the
reply is the tool call's input object. The SDK's own retries are off (``max_retries=0``): tenacity
in :mod:`factory.resilience` is the one retry owner.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic

from factory.providers.base import (
    CallTimeout,
    CompletionRequest,
    CompletionResponse,
    ConnectionFailed,
    parse_retry_after,
    status_error,
)


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, *, api_key: str | None, base_url: str | None = None, timeout: float = 10.0) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )

    async def complete(self, req: CompletionRequest) -> CompletionResponse:
        messages: list[Any] = list(req.messages)
        tool: Any = {
            "name": req.schema_name,
            "description": "Record the generated batch of questions.",
            "input_schema": req.schema,
        }
        started = time.perf_counter()
        try:
            message = await self._client.messages.create(
                model=req.model,
                max_tokens=req.max_tokens,
                system=req.system,
                messages=messages,
                tools=[tool],
                tool_choice={"type": "tool", "name": req.schema_name},
                timeout=req.timeout,
            )
        except anthropic.APITimeoutError:
            raise CallTimeout(f"no reply within {req.timeout:.1f}s") from None
        except anthropic.APIConnectionError as exc:
            raise ConnectionFailed(f"connection failed: {exc}") from None
        except anthropic.APIStatusError as exc:
            raise status_error(
                exc.status_code, f"HTTP {exc.status_code}: {exc.message}", parse_retry_after(exc.response.headers)
            ) from None
        latency = time.perf_counter() - started
        data: Any | None = None
        texts: list[str] = []
        for block in message.content:
            if block.type == "tool_use" and block.name == req.schema_name:
                data = block.input
            elif block.type == "text":
                texts.append(block.text)
        if message.stop_reason == "refusal":
            finish = "refusal"
        elif message.stop_reason == "max_tokens":
            finish = "length"
        else:
            finish = "stop"
        text = json.dumps(data, ensure_ascii=False) if data is not None else "".join(texts)
        return CompletionResponse(
            text=text,
            data=data,
            finish=finish,
            refusal=("".join(texts) or None) if finish == "refusal" else None,
            tokens_in=message.usage.input_tokens,
            tokens_out=message.usage.output_tokens,
            latency_s=latency,
            model=message.model or req.model,
        )

    async def aclose(self) -> None:
        await self._client.close()
