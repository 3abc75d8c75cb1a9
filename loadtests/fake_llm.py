"""A real local HTTP server speaking the OpenAI and Anthropic wire protocols, with programmable faults.

The official SDKs are pointed at it by base URL (OpenAI: ``f"{url}/v1"``, Anthropic: ``url``), so
tests and load tests exercise the real client code, retries, breakers and parsing — no patching.

* ``POST /v1/chat/completions`` — Chat Completions; honours ``response_format`` ``json_schema``.
* ``POST /v1/messages`` — Messages; replies with a ``tool_use`` block for the forced tool.

Content is fabricated by :class:`factory.offline.generator.OfflineGenerator` from the
``BATCH_SPEC_JSON`` block the generation prompt carries (skills, types, count), and filtered
through the requested JSON Schema, so replies are schema-valid unless a fault says otherwise.
Usage tokens are reported (about four characters a token).

Control endpoints (JSON):

* ``POST /_fault`` ``{"mode", "rate": 1.0, "times": null, "latency_s": 0, "retry_after": 1,
  "model": null, "api": null}`` adds a fault; ``DELETE /_fault`` clears them. Modes:
  ``rate_limit`` (429 + Retry-After), ``server_error`` (500), ``overloaded`` (529), ``slow``
  (waits ``latency_s`` then answers), ``malformed`` (not JSON / no tool call), ``schema`` (JSON
  violating the schema), ``bad_item`` (one semantically invalid item), ``refusal``, ``truncated``
  (finish_reason ``length`` / stop_reason ``max_tokens``). ``model``/``api`` restrict a fault to
  one model or one protocol (``openai``/``anthropic``); ``times`` limits how often it fires.
* ``POST /_config`` ``{"latency_s": 1.5}`` sets the base latency of every reply.
* ``GET /_stats`` — request counters; ``GET /_requests`` — the last 50 request bodies;
  ``GET /_events?since=T`` — one record per finished request (``start``, ``end`` as Unix times,
  ``api``, ``model``, ``outcome``; the last 200,000), for timelines such as a failover's;
  ``POST /_reset`` — clears faults, latency, counters and the logs.

Use it as ``with FakeLLMServer() as fake: ...`` (uvicorn in a background thread on 127.0.0.1 and
a free port), or run it alone: ``python -m loadtests.fake_llm --port 8089 --latency 1.5``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Self

import httpx
import uvicorn
from jsonschema import Draft202012Validator

from factory.offline.generator import OfflineGenerator
from factory.prompts import extract_spec
from factory.schemas import QUESTION_TYPES

MODES = frozenset({
    "rate_limit", "server_error", "overloaded", "slow", "malformed", "schema", "bad_item", "refusal", "truncated",
})
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Fault:
    mode: str
    rate: float = 1.0
    times: int | None = None
    latency_s: float = 0.0
    retry_after: float | None = 1.0
    model: str | None = None
    api: str | None = None

    def matches(self, api: str, model: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (self.model is None or self.model == model) and (self.api is None or self.api == api)


def _fabricate(skill: dict[str, Any], qtype: str, n: int) -> dict[str, Any]:
    """A plain, valid item for skills the offline data does not cover."""
    sid = str(skill.get("id") or "skill")
    common = {"type": qtype, "skill": sid, "accepted_answers": [], "difficulty": "medium",
              "explanation": f"Practice item {n} for {sid}."}
    if qtype == "multiple_choice":
        answer = f"respuesta {n}"
        return {**common, "prompt": f"Item {n} ({sid}): choose the correct option.", "answer": answer,
                "choices": [answer, f"opción {n + 1}", f"opción {n + 2}"]}
    if qtype == "cloze":
        return {**common, "prompt": f"Ejercicio {n}: yo ___ aquí (estar).", "answer": "estoy", "choices": None}
    return {**common, "prompt": f'Translate into Spanish: "item number {n}"', "answer": f"el elemento {n}",
            "choices": None}


class FakeLLM:
    """The ASGI app and its state (one event loop: no locks needed)."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.faults: list[Fault] = []
        self.stats: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=50)
        self.events: deque[dict[str, Any]] = deque(maxlen=200_000)
        self._generator = OfflineGenerator()
        self._seq = 0
        self._epoch = 0

    def reset(self) -> None:
        self.latency_s, self.faults, self.stats = 0.0, [], Counter()
        self.in_flight = self.max_in_flight = 0
        self._epoch += 1  # requests still running from before the reset no longer count
        self.requests.clear()
        self.events.clear()

    # --- ASGI -------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            await self._send(send, 400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        if path in ("/v1/chat/completions", "/v1/messages") and method == "POST":
            await self._generate("openai" if path.endswith("completions") else "anthropic", payload, send)
        elif path == "/_fault" and method == "POST":
            fault = Fault(**payload)
            if fault.mode not in MODES:
                await self._send(send, 422, {"detail": f"mode: expected one of {sorted(MODES)}"})
                return
            self.faults.append(fault)
            await self._send(send, 200, {"faults": [asdict(f) for f in self.faults]})
        elif path == "/_fault" and method == "DELETE":
            self.faults = []
            await self._send(send, 200, {"faults": []})
        elif path == "/_config" and method == "POST":
            self.latency_s = float(payload.get("latency_s", self.latency_s))
            await self._send(send, 200, {"latency_s": self.latency_s})
        elif path == "/_stats" and method == "GET":
            await self._send(send, 200, {**self.stats, "in_flight": self.in_flight,
                                         "max_in_flight": self.max_in_flight})
        elif path == "/_requests" and method == "GET":
            await self._send(send, 200, list(self.requests))
        elif path == "/_events" and method == "GET":
            query = dict(p.split("=", 1) for p in scope.get("query_string", b"").decode().split("&") if "=" in p)
            since = float(query.get("since", 0))
            await self._send(send, 200, [e for e in self.events if e["end"] >= since])
        elif path == "/_reset" and method == "POST":
            self.reset()
            await self._send(send, 200, {"ok": True})
        else:
            await self._send(send, 404, {"detail": f"no route {method} {path}"})

    @staticmethod
    async def _send(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": raw})

    # --- generation ---------------------------------------------------------------------------------
    def _pick_fault(self, api: str, model: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(api, model) and random.random() < fault.rate:
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    async def _generate(self, api: str, payload: dict[str, Any], send: Send) -> None:
        model = str(payload.get("model", ""))
        self.stats["requests"] += 1
        self.stats[f"requests:{api}"] += 1
        self.stats[f"model:{model}"] += 1
        self.requests.append({"api": api, **payload})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started, mode, epoch = time.time(), "ok", self._epoch
        try:
            fault = self._pick_fault(api, model)
            mode = fault.mode if fault else "ok"
            self.stats[f"outcome:{mode}"] += 1
            await asyncio.sleep(self.latency_s + (fault.latency_s if fault else 0.0))
            if mode in ("rate_limit", "server_error", "overloaded"):
                await self._error(api, mode, fault, send)
                return
            prompt = self._prompt_text(api, payload)
            items = self._items(prompt, self._schema(api, payload))
            if mode == "bad_item" and items:
                items[0] = {**items[0], "prompt": ""}
            if api == "openai":
                await self._send(send, 200, self._openai_reply(model, mode, prompt, items))
            else:
                await self._send(send, 200, self._anthropic_reply(model, mode, prompt, items, payload))
        finally:
            if epoch == self._epoch:
                self.in_flight -= 1
            self.events.append({"start": started, "end": time.time(), "api": api, "model": model, "outcome": mode})

    async def _error(self, api: str, mode: str, fault: Fault | None, send: Send) -> None:
        status = {"rate_limit": 429, "server_error": 500, "overloaded": 529}[mode]
        kind = {"rate_limit": "rate_limit_error", "server_error": "api_error", "overloaded": "overloaded_error"}[mode]
        headers = {}
        if fault is not None and fault.retry_after is not None and mode in ("rate_limit", "overloaded"):
            headers["retry-after"] = f"{fault.retry_after:g}"
        if api == "openai":
            body: dict[str, Any] = {"error": {"message": f"fake {mode}", "type": kind, "code": None, "param": None}}
        else:
            body = {"type": "error", "error": {"type": kind, "message": f"fake {mode}"}}
        await self._send(send, status, body, headers)

    @staticmethod
    def _prompt_text(api: str, payload: dict[str, Any]) -> str:
        parts: list[str] = []
        if isinstance(payload.get("system"), str):
            parts.append(payload["system"])
        for message in payload.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(b.get("text", "")) for b in content if isinstance(b, dict))
        return "\n".join(parts)

    @staticmethod
    def _schema(api: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if api == "openai":
            fmt = payload.get("response_format") or {}
            schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
            return schema if isinstance(schema, dict) else None
        tools = payload.get("tools") or []
        return tools[0].get("input_schema") if tools else None

    def _items(self, prompt: str, schema: dict[str, Any] | None) -> list[dict[str, Any]]:
        spec = extract_spec(prompt) or {}
        skills = [s for s in spec.get("skills") or [] if isinstance(s, dict)] or [{"id": "general", "level": "A1"}]
        types = [t for t in spec.get("types") or [] if t in QUESTION_TYPES] or list(QUESTION_TYPES)
        count = int(spec.get("count") or 1)
        self._seq += 1
        items: list[dict[str, Any]] = []
        for i in range(count):
            skill, qtype = skills[i % len(skills)], types[i % len(types)]
            made: list[dict[str, Any]] = []
            if self._generator.covers(str(skill.get("id"))):
                try:
                    made = self._generator.generate(skill, [qtype], 1, f"fake:{self._seq}:{i}")
                except ValueError:
                    made = []
            items.extend(made or [_fabricate(skill, qtype, self._seq * 1000 + i)])
        if schema is not None:
            item_schema = schema.get("properties", {}).get("items", {}).get("items")
            if isinstance(item_schema, dict):
                validator = Draft202012Validator(item_schema)
                items = [item for item in items if validator.is_valid(item)]
        return items

    def _openai_reply(self, model: str, mode: str, prompt: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        content: str | None = json.dumps({"items": items}, ensure_ascii=False)
        refusal, finish = None, "stop"
        if mode == "malformed":
            content = '{"items": [{"type": "multiple_choice", "prompt": "Cut here'
        elif mode == "schema":
            content = json.dumps({"questions": items[:1], "note": "not the schema"})
        elif mode == "refusal":
            content, refusal = None, "I'm sorry, I can't help with that."
        elif mode == "truncated":
            content, finish = (content or "")[: max(1, len(content or "") // 2)], "length"
        return {
            "id": f"chatcmpl-fake-{self._seq}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": refusal}}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(content or refusal or "") // 4,
                      "total_tokens": len(prompt) // 4 + len(content or refusal or "") // 4},
        }

    def _anthropic_reply(
        self, model: str, mode: str, prompt: str, items: list[dict[str, Any]], payload: dict[str, Any]
    ) -> dict[str, Any]:
        choice = payload.get("tool_choice") or {}
        tools = payload.get("tools") or [{}]
        tool_name = choice.get("name") or tools[0].get("name") or "tool"
        tool_input: dict[str, Any] = {"items": items}
        stop = "tool_use"
        content: list[dict[str, Any]]
        if mode == "malformed":
            content, stop = [{"type": "text", "text": "Here are your questions: 1. ¿Qué"}], "end_turn"
        elif mode == "refusal":
            content, stop = [{"type": "text", "text": "I can't help with that."}], "refusal"
        else:
            if mode == "schema":
                tool_input = {"questions": items[:1]}
            elif mode == "truncated":
                tool_input, stop = {}, "max_tokens"
            content = [{"type": "tool_use", "id": f"toolu_fake_{self._seq}", "name": tool_name, "input": tool_input}]
        out = len(json.dumps(content)) // 4
        return {
            "id": f"msg_fake_{self._seq}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": len(prompt) // 4, "output_tokens": out},
        }


class FakeLLMServer:
    """Run :class:`FakeLLM` under uvicorn in a background thread on 127.0.0.1 (a free port)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0) -> None:
        self.app = FakeLLM(latency_s)
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", ws="none", log_level="warning", access_log=False,
                                timeout_keep_alive=30, timeout_graceful_shutdown=1, backlog=512)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="fake-llm", daemon=True)
        self._control: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI SDK base URL; the Anthropic SDK takes :attr:`url`."""
        return f"{self.url}/v1"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        self._control = httpx.Client(base_url=self.url, timeout=5)
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._control is not None, "start the server first"
        response = self._control.post(path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def set_fault(self, mode: str, *, rate: float = 1.0, times: int | None = None, latency_s: float = 0.0,
                  retry_after: float | None = 1.0, model: str | None = None, api: str | None = None) -> None:
        """Add a fault (see the module docstring for the modes)."""
        self._post("/_fault", {"mode": mode, "rate": rate, "times": times, "latency_s": latency_s,
                               "retry_after": retry_after, "model": model, "api": api})

    def clear_faults(self) -> None:
        assert self._control is not None
        self._control.delete("/_fault").raise_for_status()

    def set_latency(self, latency_s: float) -> None:
        self._post("/_config", {"latency_s": latency_s})

    def reset(self) -> None:
        self._post("/_reset", {})

    def requests(self) -> list[dict[str, Any]]:
        """The last 50 generation requests received, oldest first (``api`` added to each body)."""
        assert self._control is not None
        result: list[dict[str, Any]] = self._control.get("/_requests").raise_for_status().json()
        return result

    def events(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Finished generation requests (start, end, api, model, outcome) that ended at or after ``since``."""
        assert self._control is not None
        result: list[dict[str, Any]] = self._control.get("/_events", params={"since": since}).raise_for_status().json()
        return result

    def stats(self) -> dict[str, int]:
        assert self._control is not None
        result: dict[str, int] = self._control.get("/_stats").raise_for_status().json()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI/Anthropic server with programmable faults.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency", type=float, default=0.0, help="base latency of every reply, seconds")
    args = parser.parse_args()
    uvicorn.run(FakeLLM(args.latency), host=args.host, port=args.port, lifespan="off", ws="none",
                log_level="warning", backlog=512)


if __name__ == "__main__":
    main()
