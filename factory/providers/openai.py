"""OpenAI Chat Completions through the official SDK — also any OpenAI-compatible endpoint by base URL.

Structured output uses ``response_format`` ``json_schema`` in strict mode, so the model is held to
the batch schema token by token. The SDK's own retries are off (``max_retries=0``): tenacity in
:mod:`factory.resilience` is the one retry owner.
"""

from __future__ import annotations

import time
from typing import Any

import openai

from factory.providers.base import (
    CallTimeout,
    CompletionRequest,
    CompletionResponse,
    ConnectionFailed,
    parse_retry_after,
    status_error,
)


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_tokens_param: str = "max_completion_tokens",
    ) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )
        self._max_tokens_param = max_tokens_param

    async def complete(self, req: CompletionRequest) -> CompletionResponse:
        messages: list[Any] = [{"role": "system", "content": req.system}, *req.messages]
        limit: dict[str, Any] = {self._max_tokens_param: req.max_tokens}
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(
                model=req.model,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": req.schema_name, "strict": True, "schema": req.schema},
                },
                timeout=req.timeout,
                **limit,
            )
        except openai.APITimeoutError:
            raise CallTimeout(f"no reply within {req.timeout:.1f}s") from None
        except openai.APIConnectionError as exc:
            raise ConnectionFailed(f"connection failed: {exc}") from None
        except openai.APIStatusError as exc:
            raise status_error(
                exc.status_code, f"HTTP {exc.status_code}: {exc.message}", parse_retry_after(exc.response.headers)
            ) from None
        latency = time.perf_counter() - started
        usage = completion.usage
        tokens_in = usage.prompt_tokens if usage else 0
        tokens_out = usage.completion_tokens if usage else 0
        if not completion.choices:
            return CompletionResponse("", None, "stop", None, tokens_in, tokens_out, latency, completion.model)
        choice = completion.choices[0]
        message = choice.message
        if message.refusal:
            finish = "refusal"
        elif choice.finish_reason == "length":
            finish = "length"
        else:
            finish = "stop"
        return CompletionResponse(
            text=message.content or "",
            data=None,
            finish=finish,
            refusal=message.refusal,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            latency_s=latency,
            model=completion.model or req.model,
        )

    async def aclose(self) -> None:
        await self._client.close()
