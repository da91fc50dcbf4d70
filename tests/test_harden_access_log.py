"""Issue 11, item 18: `modelatlas serve` writes one access line per request (method, path,
model, key id, status, tokens, latency; a stream's at its end, with its real tokens) and every
5xx with its traceback, as text or as one JSON object per line (--log-format json), and never
the key's secret. Real servers on 127.0.0.1, the echo backend."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import httpx
import pytest

from tests.servers import free_port, python_server
from tests.test_serve_keys import at_home, new_key

FAST = "test/fast"
SLOW = "test/slow"  # 0.05 s a token
BROKEN = "test/broken"  # its backend fails before the first token: a real 502
TEXT_LINE = re.compile(
    r'modelatlas\.access: (?P<client>\S+) "(?P<method>\S+) (?P<path>\S+)" (?P<status>\d+) '
    r"model=(?P<model>\S+) key=(?P<key_id>\S+) tokens=(?P<input_tokens>\d+)\+(?P<output_tokens>\d+) "
    r'latency_ms=(?P<latency_ms>[\d.]+)(?: user=(?P<end_user>"(?:[^"\\]|\\.)*"))?'
)


@pytest.fixture(scope="module", params=["text", "json"])
def served(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"log-{request.param}")
    home = folder / "home"
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord

    with at_home(home):
        user.add(ModelRecord(id=FAST, backend="echo", mode="chat"))
        user.add(ModelRecord(id=SLOW, backend="echo", mode="chat", options={"delay_s": 0.05}))
        user.add(ModelRecord(id=BROKEN, backend="echo", mode="chat", options={"fail_after": 0}))
    port = free_port()
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    env.pop("MODELATLAS_DATABASE_URL", None)
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--model", FAST, "--model", SLOW]
    args += ["--model", BROKEN, "--queue-size", "1", "--log-format", request.param]
    log = folder / "server.log"
    with python_server(args, port, ready_path="/health", log_path=str(log), env=env):
        secret = new_key(home, "logged")
        yield f"http://127.0.0.1:{port}", secret, log, request.param


def access_lines(log, fmt: str, wanted: int, *match) -> list[dict]:
    """The access lines of the log, once there are ``wanted`` of them and every ``match``
    predicate holds for them (within 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        text = log.read_text(encoding="utf-8")
        if fmt == "json":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
            lines = [r for r in records if r["logger"] == "modelatlas.access"]
        else:
            lines = [m.groupdict() for m in map(TEXT_LINE.search, text.splitlines()) if m]
            for line in lines:
                line["status"] = int(line["status"])
                for name in ("input_tokens", "output_tokens"):
                    line[name] = int(line[name])
                line["latency_ms"] = float(line["latency_ms"])
                line["key_id"] = None if line["key_id"] == "-" else line["key_id"]
                line["end_user"] = json.loads(line["end_user"]) if line["end_user"] else None
        if (len(lines) >= wanted and all(m(lines) for m in match)) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_every_request_gets_an_access_line_and_the_secret_none(served):
    base, secret, log, fmt = served
    key_id = secret.split("-")[1]
    auth = {"Authorization": f"Bearer {secret}"}
    before = len(access_lines(log, fmt, 0))
    ask = {"model": FAST, "messages": [{"role": "user", "content": "a b c"}]}
    assert httpx.post(f"{base}/v1/chat/completions", json=ask, headers=auth).status_code == 200
    assert httpx.post(f"{base}/v1/chat/completions", json=ask).status_code == 401
    assert httpx.get(f"{base}/v1/nowhere", headers=auth).status_code == 404
    stream = {
        "model": SLOW,
        "messages": [{"role": "user", "content": "p q r s t u"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=stream, headers=auth) as answer:
        events = [line for line in answer.iter_lines() if line.startswith("data: {")]
    took_ms = (time.perf_counter() - start) * 1000
    usage = json.loads(events[-1][6:])["usage"]
    ok, unauthorized, missing, streamed = access_lines(log, fmt, before + 4)[before:]
    assert ok["method"] == "POST" and ok["path"] == "/v1/chat/completions" and ok["status"] == 200
    assert (ok["model"], ok["key_id"], ok["input_tokens"], ok["output_tokens"]) == (FAST, key_id, 3, 3)
    assert unauthorized["status"] == 401 and unauthorized["key_id"] is None
    assert missing["status"] == 404 and missing["path"] == "/v1/nowhere" and missing["method"] == "GET"
    assert missing["key_id"] is None  # no route: nobody checked the key
    # The stream's line is written at its end: its real tokens, and it lasted all the stream.
    assert (streamed["model"], streamed["status"], streamed["key_id"]) == (SLOW, 200, key_id)
    assert streamed["input_tokens"] == usage["prompt_tokens"] == 6
    assert streamed["output_tokens"] == usage["completion_tokens"] == 6
    assert 6 * 50 <= streamed["latency_ms"] <= took_ms + 50
    text = log.read_text(encoding="utf-8")
    assert secret not in text and secret.split("-", 2)[2] not in text


def test_a_5xx_is_logged_with_its_traceback(served):
    base, secret, log, fmt = served
    auth = {"Authorization": f"Bearer {secret}"}
    ask = {"model": BROKEN, "messages": [{"role": "user", "content": "a b c"}]}
    failed = httpx.post(f"{base}/v1/chat/completions", json=ask, headers=auth, timeout=30)
    assert failed.status_code == 502, failed.text
    seen = lambda lines: any(line["status"] == 502 and line["model"] == BROKEN for line in lines)  # noqa: E731
    assert seen(access_lines(log, fmt, 1, seen))
    text = log.read_text(encoding="utf-8")
    if fmt == "json":
        errors = [json.loads(line) for line in text.splitlines() if '"ERROR"' in line]
        assert any("BackendError" in e["message"] and "Traceback" in e["traceback"] for e in errors)
    else:
        assert re.search(r"ERROR \S+: BackendError answered 502.*\nTraceback", text)


def test_a_full_queue_is_one_warning_line_without_a_traceback(served):
    """A 503 for a full queue is the capacity working, not a fault: logged, but no traceback."""
    base, secret, log, fmt = served
    auth = {"Authorization": f"Bearer {secret}"}
    long = {"model": SLOW, "messages": [{"role": "user", "content": " ".join(["w"] * 30)}]}
    answers = []

    def send():
        answers.append(httpx.post(f"{base}/v1/chat/completions", json=long, headers=auth, timeout=30))

    first = threading.Thread(target=send)
    first.start()
    time.sleep(0.5)  # the first one holds the model's only queue place (--queue-size 1)
    busy = httpx.post(f"{base}/v1/chat/completions", json=long, headers=auth, timeout=30)
    first.join()
    assert busy.status_code == 503 and answers[0].status_code == 200
    seen = lambda lines: any(line["status"] == 503 and line["model"] == SLOW for line in lines)  # noqa: E731
    assert seen(access_lines(log, fmt, 1, seen))
    busy_lines = [line for line in log.read_text(encoding="utf-8").splitlines() if "ServerBusyError" in line]
    assert busy_lines and all("WARNING" in line for line in busy_lines)
    assert all("Traceback" not in line for line in busy_lines)


def test_the_end_user_a_request_names_is_written_in_its_line(served):
    """OpenAI's safety_identifier (or the older user) changes no answer; it is recorded, so a
    team can trace one user of its application. Quotes and spaces stay inside the field."""
    base, secret, log, fmt = served
    auth = {"Authorization": f"Bearer {secret}"}
    before = len(access_lines(log, fmt, 0))
    named = ({"user": "u-1"}, {"safety_identifier": 'hash "2" x', "user": "u-ignored"}, {})
    for extra in named:
        ask = {"model": FAST, "messages": [{"role": "user", "content": "a b"}], **extra}
        assert httpx.post(f"{base}/v1/chat/completions", json=ask, headers=auth).status_code == 200
    lines = access_lines(log, fmt, before + 3)[before:]
    assert [line.get("end_user") for line in lines] == ["u-1", 'hash "2" x', None]
