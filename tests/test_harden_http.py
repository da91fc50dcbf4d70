"""Hardening of `modelatlas serve` at the HTTP level (issue 11, items 4, 5, 6, 8, 10, 16a, 16c):
a real server subprocess on 127.0.0.1, real sockets, echo models through the registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.servers import free_port, python_server
from tests.test_serve_keys import new_key

openai = pytest.importorskip("openai")

FAST, SLOW, BROKEN = "test/fast", "test/slow", "test/broken"
QUEUE = 20  # the queue of each model: 20 clients at once fit it
READ_TIMEOUT_S = 1.5
CHAT_PATH = "/v1/chat/completions"


def add_echo_models(home) -> None:
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    code = (
        "from modelatlas.catalog import user\n"
        "from modelatlas.catalog.records import ModelRecord as R\n"
        f"user.add(R(id={FAST!r}, backend='echo', mode='chat'))\n"
        f"user.add(R(id={SLOW!r}, backend='echo', mode='chat', options={{'delay_s': 0.05}}))\n"
        f"user.add(R(id={BROKEN!r}, backend='echo', mode='chat', options={{'fail_after': 3}}))\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


@contextlib.contextmanager
def server(folder, *options: str):
    """A real `modelatlas serve` on a free port: (url, home, process)."""
    home = folder / "home"
    add_echo_models(home)
    port = free_port()
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    env.pop("MODELATLAS_DATABASE_URL", None)
    args = ["-m", "modelatlas", "serve", "--port", str(port), *options]
    log = str(folder / "server.log")
    with python_server(args, port, ready_path="/health", log_path=log, env=env) as proc:
        yield f"http://127.0.0.1:{port}", home, proc


ECHO = ["--model", FAST, "--model", SLOW, "--model", BROKEN]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("harden-http")
    options = [*ECHO, "--queue-size", str(QUEUE), "--read-timeout", str(READ_TIMEOUT_S)]
    with server(folder, *options) as (url, home, proc):
        yield url, home, proc, new_key(home, "main")


def usage_rows(home, model: str) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(home / "modelatlas.db")) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM usage_records WHERE model_id = ? ORDER BY id", (model,)).fetchall()


def wait_for_rows(home, model: str, test, timeout: float = 10.0) -> list[sqlite3.Row]:
    """The model's usage rows once ``test(rows)`` holds (records are stored in batches)."""
    deadline = time.monotonic() + timeout
    rows = usage_rows(home, model)
    while not test(rows) and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = usage_rows(home, model)
    return rows


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def head(port: int, path: str, secret: str | None, extra: str = "") -> bytes:
    auth = f"Authorization: Bearer {secret}\r\n" if secret else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of one HTTP response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed before a response: {data!r}"
        data += piece
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece
        rest += piece
    return int(lines[0].split()[1]), json.loads(rest[:length])


def big_body_pieces(megabytes: int) -> tuple[bytes, bytes, int]:
    """A chat request of about ``megabytes`` MB as (start, 1 MB filler, count), valid JSON."""
    start = b'{"model": "test/fast", "messages": [{"role": "user", "content": "'
    return start, b"a" * 2**20, megabytes


def send_big(port: int, secret: str | None, megabytes: int, chunked: bool) -> tuple[int, dict]:
    start, filler, count = big_body_pieces(megabytes)
    end = b'"}]}'
    pieces = [start, *([filler] * count), end]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        if chunked:
            sock.sendall(head(port, "/v1/chat/completions", secret, "Transfer-Encoding: chunked\r\n"))
            for piece in pieces:
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        else:
            length = sum(len(p) for p in pieces)
            sock.sendall(head(port, "/v1/chat/completions", secret, f"Content-Length: {length}\r\n"))
            for piece in pieces:
                sock.sendall(piece)
        return read_response(sock)


# -- 5: the key before the body, and a body limit -----------------------------------------------


def test_unauthenticated_big_bodies_get_401_without_the_server_growing(served):
    url, _, proc, _ = served
    port = port_of(url)
    before = rss_mb(proc.pid)
    answers: list[tuple[int, dict]] = []

    def one(chunked: bool) -> None:
        answers.append(send_big(port, None, 50, chunked))

    threads = [threading.Thread(target=one, args=(i % 2 == 1,)) for i in range(8)]  # 400 MB
    for thread in threads:
        thread.start()
    peak = before
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(proc.pid))
        time.sleep(0.02)
    assert [status for status, _ in answers] == [401] * 8
    assert all(body["error"]["type"] == "authentication_error" for _, body in answers)
    # Parsed before the key check, 8 such bodies took well over 1 GB.
    assert peak - before < 100, f"RSS grew from {before:.0f} MB to {peak:.0f} MB"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_authenticated_body_over_the_limit_gets_413(served, chunked):
    url, _, _, secret = served
    status, body = send_big(port_of(url), secret, 20, chunked)
    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    assert "16 MB" in body["error"]["message"] and "--max-body-mb" in body["error"]["message"]


def test_a_body_under_the_limit_is_answered(served):
    url, _, _, secret = served
    word = "b" * 2**20  # one 1 MB "token": echo answers it back
    body = {"model": FAST, "messages": [{"role": "user", "content": word}]}
    answer = httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=60
    )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == word


# -- 6: a client that leaves a whole (non-streamed) answer cancels it --------------------------


async def leave_early(port: int, secret: str | None, body: dict, after_s: float, path: str) -> None:
    """Send a request, then close the connection before the answer comes."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    extra = f"Content-Length: {len(data)}\r\n"
    writer.write(head(port, path, secret, extra) + data)
    await writer.drain()
    await asyncio.sleep(after_s)
    writer.close()
    await writer.wait_closed()


async def many_leave(
    port: int, secret: str | None, body: dict, clients: int, after_s: float, path: str = CHAT_PATH
) -> None:
    await asyncio.gather(*(leave_early(port, secret, body, after_s, path) for _ in range(clients)))


def queue_depth(url: str, model: str) -> int:
    """Requests holding or waiting for one of the model's slots, from /metrics."""
    line = f'modelatlas_queue_depth{{model="{model}"}} '
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return int(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


def wait_for_idle(url: str, model: str, timeout: float = 5.0) -> float:
    """Seconds until no request holds or waits for a slot of ``model`` (fails after ``timeout``)."""
    start = time.monotonic()
    while queue_depth(url, model) > 0:
        assert time.monotonic() - start < timeout, f"{model} still has requests after {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - start


def burst(url: str, secret: str | None, model: str, n: int, **extra) -> list[int]:
    """Status codes of ``n`` simultaneous short requests."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, **extra}

    async def all_of_them() -> list[int]:
        async with httpx.AsyncClient(timeout=300, headers=headers) as client:
            answers = await asyncio.gather(
                *(client.post(f"{url}/v1/chat/completions", json=body) for _ in range(n))
            )
        return [a.status_code for a in answers]

    return asyncio.run(all_of_them())


def test_clients_that_leave_free_their_slots_and_are_metered_cancelled(served):
    url, home, _, _ = served
    secret = new_key(home, "leavers")
    words = " ".join(f"w{i}" for i in range(300))  # 300 tokens at 0.05 s: 15 s if left running
    body = {"model": SLOW, "messages": [{"role": "user", "content": words}], "max_tokens": 300}
    started = time.monotonic()
    asyncio.run(many_leave(port_of(url), secret, body, QUEUE, after_s=0.6))
    wait_for_idle(url, SLOW, timeout=2.0)
    # Every slot is free again: a full queue's worth of requests is answered at once.
    assert burst(url, secret, SLOW, QUEUE) == [200] * QUEUE
    assert time.monotonic() - started < 10

    def all_cancelled(rows):
        return len([r for r in rows if r["key_name"] == "leavers" and r["cancelled"]]) >= QUEUE

    rows = [r for r in wait_for_rows(home, SLOW, all_cancelled) if r["key_name"] == "leavers"]
    left = [r for r in rows if r["cancelled"]]
    assert len(left) == QUEUE
    assert all(r["status"] == 499 for r in left)
    assert all(r["input_tokens"] == 300 for r in left)
    # Billed for what was generated before the client left (about 12 tokens for those the
    # model's concurrency limit let start, none for those still waiting), not for 300.
    generated = [r["output_tokens"] for r in left]
    assert all(n < 100 for n in generated) and any(n > 0 for n in generated), generated


# -- 8: an error in the middle of a stream ------------------------------------------------------


def test_an_error_mid_stream_is_an_error_event_then_done_and_metered_with_its_status(served):
    url, home, _, _ = served
    secret = new_key(home, "broken")
    body = {"model": BROKEN, "messages": [{"role": "user", "content": "a b c d e f"}], "stream": True}
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as answer:
        assert answer.status_code == 200
        events = [line[6:] for line in answer.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "backend_error" and error["type"] == "server_error"
    assert "simulated failure after 3 tokens" in error["message"]
    texts = [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-2]]
    assert "".join(t for t in texts if t) == "a b c"
    rows = wait_for_rows(
        home, BROKEN, lambda rows: any(r["key_name"] == "broken" and r["status"] for r in rows)
    )
    row = next(r for r in rows if r["key_name"] == "broken" and r["status"])  # 0: in flight
    assert row["status"] == 502 and row["output_tokens"] == 3

    client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)
    stream = client.chat.completions.create(
        model=BROKEN, messages=[{"role": "user", "content": "a b c d e f"}], stream=True
    )
    with pytest.raises(openai.APIError, match="simulated failure"):
        list(stream)


# -- 16a: "did you mean" only among the key's models --------------------------------------------


def test_did_you_mean_offers_a_restricted_key_only_its_own_models(served):
    url, home, _, _ = served
    secret = new_key(home, "fast-only", "--models", FAST)
    headers = {"Authorization": f"Bearer {secret}"}

    def ask(model: str) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)

    for typo in ("test/slwo", "test/brokn", "test/slow2"):
        answer = ask(typo)
        assert answer.status_code == 404
        message = answer.json()["error"]["message"]
        assert f"'{SLOW}'" not in message and f"'{BROKEN}'" not in message, message
    near = ask("test/fsat").json()["error"]["message"]
    assert f"Did you mean '{FAST}'" in near
    # A key for every model still gets every suggestion.
    _, _, _, main = served
    anyone = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "test/slwo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {main}"},
    )
    assert f"'{SLOW}'" in anyone.json()["error"]["message"]


# -- 16c: slow clients are cut off --------------------------------------------------------------


def trickle(port: int, data: bytes, every_s: float, limit_s: float) -> tuple[float, bytes]:
    """Send ``data`` a byte at a time; (seconds until the server closed, what it sent)."""
    start = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(every_s)
        for byte in data:
            # Read before each byte: once the server has answered and closed, a byte sent to it
            # draws a reset, and a reset can drop the answer still unread.
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                piece = None
            except OSError:
                break
            if piece == b"":
                break
            received += piece or b""
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if time.monotonic() - start > limit_s:
                pytest.fail(f"the server still reads after {limit_s}s (got {received!r})")
    return time.monotonic() - start, received


def test_headers_sent_byte_by_byte_are_cut_after_the_read_timeout(served):
    url, _, _, secret = served
    port = port_of(url)
    request = head(port, "/v1/chat/completions", secret, "Content-Length: 2\r\n") * 4
    seconds, received = trickle(port, request, every_s=0.1, limit_s=4 * READ_TIMEOUT_S)
    assert READ_TIMEOUT_S - 0.2 <= seconds <= 2.5 * READ_TIMEOUT_S
    assert received.startswith(b"HTTP/1.1 408") and b"request_timeout" in received


def test_a_body_sent_slowly_is_cut_after_the_read_timeout(served):
    url, _, _, secret = served
    port = port_of(url)
    body = json.dumps({"model": FAST, "messages": [{"role": "user", "content": "x" * 200}]}).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head(port, "/v1/chat/completions", secret, f"Content-Length: {len(body)}\r\n"))
        start = time.monotonic()
        sock.settimeout(0.1)
        received = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
                received += sock.recv(65536)
            except TimeoutError:
                pass
            except OSError:
                break
            if b"\r\n\r\n" in received or time.monotonic() - start > 4 * READ_TIMEOUT_S:
                break
        seconds = time.monotonic() - start
        received += _rest(sock)  # the body may come in a later read than the status line
    assert received.startswith(b"HTTP/1.1 408"), received
    assert b"request_timeout" in received and b"--read-timeout" in received
    assert seconds <= 2.5 * READ_TIMEOUT_S


def _rest(sock: socket.socket, within_s: float = 2.0) -> bytes:
    """What the server still sends before it closes the connection (or ``within_s`` passes)."""
    sock.settimeout(within_s)
    rest = b""
    with contextlib.suppress(OSError):
        while piece := sock.recv(65536):
            rest += piece
    return rest


def test_a_quick_client_on_a_kept_alive_connection_is_not_cut(served):
    url, _, _, secret = served
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"model": FAST, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(3):
            assert client.post(f"{url}/v1/chat/completions", json=body).status_code == 200
            time.sleep(READ_TIMEOUT_S / 2)


# -- 4: DNS rebinding against --no-auth ---------------------------------------------------------


@pytest.fixture(scope="module")
def open_served(tmp_path_factory):
    with server(tmp_path_factory.mktemp("harden-open"), "--no-auth", "--model", FAST) as (url, home, _):
        yield url, home


def test_no_auth_answers_only_loopback_host_headers(open_served):
    url, _ = open_served
    port = port_of(url)
    body = {"model": FAST, "messages": [{"role": "user", "content": "hi"}]}
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Host": host})
        assert answer.status_code == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", "10.0.0.7"):
        headers = {"Host": host, "Origin": f"http://{host}"}
        for answer in (
            httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers),
            httpx.post(f"{url}/v1/embeddings", json={"model": FAST, "input": "x"}, headers=headers),
            httpx.get(f"{url}/v1/models", headers=headers),
            httpx.get(f"{url}/v1/usage", headers=headers),
        ):
            assert answer.status_code == 400, (host, answer.request.url)
            assert answer.json()["error"]["code"] == "host_not_allowed"


def test_with_keys_on_the_host_header_is_not_checked(served):
    """A rebinding page has no key: with keys on, any Host (a proxy's name, say) is answered."""
    url, _, _, secret = served
    body = {"model": FAST, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Host": "api.example.com", "Authorization": f"Bearer {secret}"}
    assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers).status_code == 200


# -- 10: a graceful stop with a deadline --------------------------------------------------------


def read_stream(url: str, secret: str, words: int, out: dict, started: threading.Event | None = None) -> None:
    text = " ".join(f"w{i}" for i in range(words))
    body = {"model": SLOW, "messages": [{"role": "user", "content": text}], "stream": True}
    events = []
    try:
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
        ) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
                    if started is not None:
                        started.set()
    except httpx.HTTPError as exc:
        out["failure"] = repr(exc)
    out["events"], out["ended"] = events, time.monotonic()


def test_sigterm_lets_short_requests_finish_and_ends_long_streams_with_an_error(tmp_path):
    with server(tmp_path, *ECHO, "--shutdown-timeout", "2") as (url, home, proc):
        secret = new_key(home, "stopping")
        short, long = {}, [{} for _ in range(3)]
        # The short one starts first and holds its slot before the others queue: the echo model
        # runs a few at a time, and a short stream left waiting behind the long ones would meet
        # the deadline too.
        short_started = threading.Event()
        first = threading.Thread(target=read_stream, args=(url, secret, 20, short, short_started))  # 1 s
        first.start()
        assert short_started.wait(timeout=30)
        threads = [first]
        threads += [threading.Thread(target=read_stream, args=(url, secret, 400, o)) for o in long]  # 20 s
        whole = {}

        def whole_answer() -> None:
            text = " ".join(f"w{i}" for i in range(400))
            body = {"model": SLOW, "messages": [{"role": "user", "content": text}]}
            answer = httpx.post(
                f"{url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {secret}"},
                timeout=30,
            )
            whole["status"], whole["body"] = answer.status_code, answer.json()

        threads.append(threading.Thread(target=whole_answer))
        for thread in threads[1:]:
            thread.start()
        time.sleep(0.5)
        stopped = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # no new connections once stopping
            httpx.get(f"{url}/health", timeout=2)
        for thread in threads:
            thread.join(timeout=15)
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        exited = time.monotonic() - stopped

    assert short["events"][-1] == "[DONE]" and '"finish_reason":"stop"' in short["events"][-2]
    for out in long:
        assert "failure" not in out, out.get("failure")
        assert out["events"][-1] == "[DONE]"
        assert json.loads(out["events"][-2])["error"]["code"] == "server_shutting_down"
        assert 1.5 <= out["ended"] - stopped <= 6
    assert whole["status"] == 503 and whole["body"]["error"]["code"] == "server_shutting_down"
    assert exited < 10
    rows = [r for r in usage_rows(home, SLOW) if r["key_name"] == "stopping"]
    assert sorted(r["status"] for r in rows) == [200, 503, 503, 503, 503]
    assert all(r["cancelled"] for r in rows if r["status"] == 503)
    assert all(0 < r["output_tokens"] < 400 for r in rows if r["status"] == 503)


# -- 6 on a real model: SmolLM2 through llama.cpp ------------------------------------------------

SMOL = "local/smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol_served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("harden-smol")
    options = ["--no-auth", "--model", SMOL, "--queue-size", str(QUEUE)]
    with server(folder, *options) as (url, home, _):
        yield url, home


def test_smollm2_clients_that_leave_free_the_model(smol_served):
    url, home = smol_served
    assert burst(url, None, SMOL, 1) == [200]  # loaded, so the clients below wait for no load
    prompt = "Once upon a time, a dragon who had never cooked anything opened a restaurant."
    body = {"model": SMOL, "prompt": prompt, "max_tokens": 1500, "temperature": 1.0}
    asyncio.run(many_leave(port_of(url), None, body, QUEUE, after_s=1.0, path="/v1/completions"))
    # 20 generations of up to 1,500 tokens, 4 at a time, would hold the queue for minutes.
    wait_for_idle(url, SMOL, timeout=5.0)
    assert burst(url, None, SMOL, QUEUE) == [200] * QUEUE

    def settled(rows):
        return len([r for r in rows if r["endpoint"] == "completions" and r["status"]]) >= QUEUE

    rows = [r for r in wait_for_rows(home, SMOL, settled) if r["endpoint"] == "completions"]
    assert len(rows) == QUEUE, [(r["status"], r["output_tokens"]) for r in rows]
    left = [r for r in rows if r["cancelled"]]
    assert len(left) >= QUEUE - 2  # a short story may end within the second; the others cannot
    assert all(r["status"] == 499 and r["output_tokens"] < 1500 for r in left)
