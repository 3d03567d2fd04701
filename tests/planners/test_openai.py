"""The openai planner against a real chat-completions HTTP server on 127.0.0.1 (a thread here):
good, malformed, off-vocabulary, refusal, slow and 500 replies each end as documented."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from robopolicy.errors import RobopolicyError
from robopolicy.planners import make_planner
from robopolicy.planners.base import PlannerBudgetExhausted, PlannerInvalid
from robopolicy.planners.grammar import DONE, SkillCall
from robopolicy.planners.openai_compat import PlannerEndpointError
from robopolicy.planners.vocabulary import ObjectInfo

KEY = "sk-test-SECRET-0123456789"
MUG = ObjectInfo("mug", ("handle", "body", "contents"))
OBS = {"rgb.agentview": np.full((32, 32, 3), 127, np.uint8)}
GOOD = '{"skills": [{"skill": "grasp", "part": "handle"}, {"skill": "move", "direction": "top"}]}'
PLAN = [SkillCall("grasp", {"part": "handle"}), SkillCall("move", {"direction": "top", "distance": 0.12})]


def answer(content=None, refusal=None) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "finish_reason": "stop",
         "message": {"role": "assistant", "content": content, "refusal": refusal}}]}


class Endpoint:
    """A chat-completions server replying from a script of (delay_s, status, body); the last
    entry repeats. It records each request's headers and JSON body, and the most requests it
    held at once."""

    def __init__(self):
        self.script: list[tuple[float, int, object]] = [(0.0, 200, answer(GOOD))]
        self.requests: list[tuple[dict, dict]] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint.lock:
                    endpoint.requests.append((dict(self.headers), body))
                    entry = endpoint.script.pop(0) if len(endpoint.script) > 1 else endpoint.script[0]
                    endpoint.in_flight += 1
                    endpoint.max_in_flight = max(endpoint.max_in_flight, endpoint.in_flight)
                delay, status, reply = entry
                time.sleep(delay)
                with endpoint.lock:
                    endpoint.in_flight -= 1
                data = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    ep = Endpoint()
    yield ep
    ep.close()


@pytest.fixture
def make(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_PLANNER_KEY", KEY)

    def build(**kw):
        cfg = {"name": "openai", "base_url": endpoint.url, "model": "test-vlm",
               "api_key_env": "TEST_PLANNER_KEY", "timeout": 0.5, "retries": 1, "backoff": 0.01}
        return make_planner(cfg | kw, log_path=tmp_path / "test1" / "planner_log.jsonl")

    return build


def log_records(tmp_path) -> list[dict]:
    path = tmp_path / "test1" / "planner_log.jsonl"
    assert KEY not in path.read_text()
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_good_answer_sends_key_image_and_logs_without_key(endpoint, make, tmp_path):
    planner = make()
    planner.reset(episode="test1/0")
    assert planner.plan("Grasp the mug by its handle and move it up.", OBS, MUG) == PLAN
    headers, body = endpoint.requests[0]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert body["model"] == "test-vlm"
    user = body["messages"][1]["content"]
    assert "handle, body, contents" in user[0]["text"]
    assert user[1]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    (record,) = log_records(tmp_path)
    assert record["outcome"] == "ok" and record["episode"] == "test1/0" and record["latency_s"] > 0
    assert record["step"] == 0  # the episode step it was asked at (the viewer places it there)
    assert "base64 chars" in json.dumps(record["request"])


def test_next_skill_sees_history_and_answers_done(endpoint, make):
    planner = make()
    planner.plan("Grasp the mug by its handle.", OBS, MUG)
    endpoint.script = [(0.0, 200, answer('{"skill": "release"}')), (0.0, 200, answer('{"done": true}'))]
    assert planner.next_skill(PLAN, OBS) == SkillCall("release", {})
    text = endpoint.requests[-1][1]["messages"][1]["content"][0]["text"]
    assert "Your plan at the start:" in text
    assert text.endswith('Skills done so far, in order:\n{"skill": "grasp", "part": "handle"}\n'
                         '{"skill": "move", "direction": "top", "distance": 0.12}\n\n'
                         'Answer the next skill only, e.g. {"skill": "move", "direction": "left"}, '
                         'or {"done": true} if the task is finished.')
    assert planner.next_skill([*PLAN, SkillCall("release", {})], OBS) is DONE


def test_malformed_answer_is_retried_with_the_error(endpoint, make, tmp_path):
    endpoint.script = [(0.0, 200, answer('{"skills": [{"skill": "grasp", "part": "handle"')),
                       (0.0, 200, answer(GOOD))]
    planner = make()
    assert planner.plan("Grasp the mug.", OBS, MUG) == PLAN
    assert planner.calls == 2
    retry_text = endpoint.requests[1][1]["messages"][1]["content"][0]["text"]
    assert "It was rejected: the answer holds no JSON object" in retry_text
    assert [r["outcome"].split(":")[0] for r in log_records(tmp_path)] == ["invalid", "ok"]


@pytest.mark.parametrize("reply, error", [
    (answer('{"skills": [{"skill": "grasp", "part": "spout"}]}'), "part 'spout' is not a part of the mug"),
    (answer(None, refusal="I can't help with that."), "the model refused: I can't help"),
    (answer("I'm sorry, but I cannot assist with robots."), "holds no JSON object"),
    ("<html>not json</html>", "not JSON"),
    ({"error": "oops"}, "not a chat completion"),
])
def test_invalid_twice_ends_as_planner_invalid(endpoint, make, reply, error):
    endpoint.script = [(0.0, 200, reply)]
    planner = make()
    with pytest.raises(PlannerInvalid) as info:
        planner.plan("Grasp the mug.", OBS, MUG)
    assert info.value.reason == "planner_invalid"
    assert error in str(info.value) and "\n" not in str(info.value)
    assert len(endpoint.requests) == 2


def test_call_budget(endpoint, make):
    endpoint.script = [(0.0, 200, answer("no"))]
    with pytest.raises(PlannerBudgetExhausted) as info:
        make(max_calls=1).plan("Grasp the mug.", OBS, MUG)
    assert info.value.reason == "planner_budget" and len(endpoint.requests) == 1


@pytest.mark.parametrize("first", [(1.0, 200, answer(GOOD)), (0.0, 500, {"error": "busy"})])
def test_slow_or_500_is_retried(endpoint, make, tmp_path, first):
    endpoint.script = [first, (0.0, 200, answer(GOOD))]
    assert make().plan("Grasp the mug.", OBS, MUG) == PLAN
    outcomes = [r["outcome"] for r in log_records(tmp_path)]
    assert outcomes[0] in ("http error: no reply within 0.5 s", "http error: HTTP 500")
    assert outcomes[1] == "ok"


@pytest.mark.parametrize("reply, error", [
    ((1.0, 200, answer(GOOD)), "no reply within 0.5 s (after 2 tries)"),
    ((0.0, 500, {"error": "busy"}), "HTTP 500 (after 2 tries)"),
    ((0.0, 401, {"error": "bad key"}), "HTTP 401"),
])
def test_endpoint_failures_are_one_line_errors(endpoint, make, reply, error):
    endpoint.script = [reply]
    with pytest.raises(PlannerEndpointError) as info:
        make().plan("Grasp the mug.", OBS, MUG)
    assert error in str(info.value) and endpoint.url in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_endpoint(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    planner = make_planner({"name": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
                            "model": "m", "api_key_env": None, "retries": 1, "backoff": 0.01})
    with pytest.raises(PlannerEndpointError, match=r"connection refused \(after 2 tries\)$"):
        planner.plan("Grasp the mug.", OBS, MUG)


def test_missing_key_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_PLANNER_KEY", raising=False)
    with pytest.raises(RobopolicyError, match="environment variable NO_SUCH_PLANNER_KEY is not set"):
        make_planner({"name": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m",
                      "api_key_env": "NO_SUCH_PLANNER_KEY"})


def test_concurrent_calls_do_not_serialize(endpoint, make):
    # each reply takes 1 s at the server, so every request of a client that does not serialize
    # is held there at once, however loaded the machine
    n, delay = 8, 1.0
    endpoint.script = [(delay, 200, answer(GOOD))]
    first = make(concurrency=n, timeout=5.0)
    planners = [first] + [first.spawn() for _ in range(n - 1)]
    start = time.perf_counter()
    futures = [p.plan_async("Grasp the mug.", OBS, MUG) for p in planners]
    assert [f.result(timeout=10) for f in futures] == [PLAN] * n
    elapsed = time.perf_counter() - start
    first.close()
    assert len(endpoint.requests) == n
    print(f"{n} concurrent calls of {delay} s each: {elapsed:.2f} s")
    assert endpoint.max_in_flight == n
    assert elapsed < n * delay / 2, elapsed
