"""The `openai` planner: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang,
llama.cpp, Ollama...).

    planner=openai planner.base_url=http://127.0.0.1:8000/v1 planner.model=Qwen2-VL-7B-Instruct

The key comes from the environment variable `api_key_env` names (null: an endpoint without
one) and is sent only in the Authorization header: never logged, never in a record. A reply
that times out, fails to connect, or comes back 429/5xx is tried again after 1, 2, 4... x
`backoff` seconds, `retries` times; then the run stops with one line naming the endpoint
(`PlannerEndpointError`). Another HTTP error (401, 404...) stops it at once. Every exchange,
failed tries included, is one JSON line in `log_path` (the image as its size and hash).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import requests

from robopolicy.errors import RobopolicyError
from robopolicy.planners import register_planner
from robopolicy.planners.base import Completion, ModelPlanner
from robopolicy.planners.prompt import Prompt, openai_messages
from robopolicy.planners.vocabulary import DEFAULT_SNAP_THRESHOLD

RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))


class PlannerEndpointError(RobopolicyError):
    """The planner's endpoint cannot be used (unreachable, too slow, or refusing the request)."""


def _loggable(body: Any) -> Any:
    """The request body with each image data URL replaced by its size and hash."""
    if isinstance(body, dict):
        return {k: _loggable(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_loggable(v) for v in body]
    if isinstance(body, str) and body.startswith("data:image/"):
        head, _, data = body.partition(",")
        digest = hashlib.sha256(data.encode()).hexdigest()[:16]
        return f"{head},<{len(data)} base64 chars, sha256 {digest}>"
    return body


def _reply_text(data: Any) -> tuple[str, str | None]:
    """(the answer text, why there is none) from a chat-completions response body."""
    try:
        message = data["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return "", "the endpoint's reply is not a chat completion (no choices[0].message)"
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not content:
        refusal = message.get("refusal") if isinstance(message, dict) else None
        if refusal:
            return "", f"the model refused: {' '.join(str(refusal).split())[:200]}"
        return "", "the answer is empty"
    return str(content), None


@register_planner()
class OpenAIPlanner(ModelPlanner):
    """Plans with a chat-completions endpoint (see the module docstring)."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY",
                 timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
                 max_tokens: int = 512, temperature: float = 0.0,
                 snap_threshold: float = DEFAULT_SNAP_THRESHOLD, invalid_retries: int = 1,
                 max_calls: int = 32, concurrency: int = 8,
                 log_path: str | Path | None = None) -> None:
        super().__init__(snap_threshold=snap_threshold, invalid_retries=invalid_retries,
                         max_calls=max_calls, concurrency=concurrency, log_path=log_path)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise RobopolicyError(f"planner.base_url must be an http(s) URL such as "
                                  f"http://127.0.0.1:8000/v1, got {base_url!r}")
        if not model:
            raise RobopolicyError("planner.model is empty: name the endpoint's model")
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise RobopolicyError(f"planner: timeout must be > 0, retries and backoff >= 0 "
                                  f"(got {timeout}, {retries}, {backoff})")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self.max_tokens, self.temperature = int(max_tokens), float(temperature)
        self._headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise RobopolicyError(f"planner.api_key_env: environment variable {api_key_env} is "
                                      "not set (export it, or planner.api_key_env=null for an "
                                      "endpoint without a key)")
            self._headers["Authorization"] = f"Bearer {key}"

    def __repr__(self) -> str:
        return f"OpenAIPlanner(url={self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def complete(self, prompt: Prompt) -> Completion:
        body = {"model": self.model, "messages": openai_messages(prompt),
                "max_tokens": self.max_tokens, "temperature": self.temperature}
        logged = _loggable(body)
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            start = time.perf_counter()
            try:
                reply = requests.post(self.url, json=body, headers=self._headers, timeout=self.timeout)
            except requests.Timeout:
                problem = f"no reply within {self.timeout:g} s"
            except requests.ConnectionError as exc:
                problem = ("connection refused" if "refused" in str(exc).lower()
                           else f"cannot connect ({type(exc).__name__})")
            else:
                latency = time.perf_counter() - start
                if reply.status_code == 200:
                    try:
                        data = reply.json()
                    except ValueError:
                        data = None
                    text, error = _reply_text(data) if data is not None else (
                        "", "the endpoint's reply is not JSON")
                    return Completion(text, logged, data if data is not None else reply.text[:2000],
                                      latency, error)
                problem = f"HTTP {reply.status_code}"
                if reply.status_code not in RETRY_STATUS:
                    self._record_failure(prompt, logged, reply.text[:2000], latency, problem, attempt)
                    detail = " ".join(reply.text.split())[:120]
                    raise PlannerEndpointError(f"planner endpoint {self.url}: {problem} ({detail})")
            self._record_failure(prompt, logged, None, time.perf_counter() - start, problem, attempt)
        raise PlannerEndpointError(f"planner endpoint {self.url}: {problem} "
                                   f"(after {self.retries + 1} tries)")

    def _record_failure(self, prompt: Prompt, request: dict, response: Any, latency: float,
                        problem: str, attempt: int) -> None:
        self.record(mode=prompt.mode, http_attempt=attempt, request=request, response=response,
                    answer=None, latency_s=latency, outcome=f"http error: {problem}")
