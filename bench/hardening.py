"""The attacks of the hardening issue, replayed on a real `modelatlas serve`, with their figures.

One server on a free 127.0.0.1 port (an echo test model, so the model's speed plays no part),
in a temporary home. Each line prints what happened against the limit it must hold, measured in
this run:

(a) budget: bursts of 20 requests at once on a key with a $0.05 budget, until every one is
    refused: dollars spent / budget, and the bound (budget + one request's worst case);
(b) TPM: three bursts of 20 at once on a key with 50 tokens per minute: tokens used / limit;
(c) body: 12 unauthenticated 50 MB POSTs at once: the server's RSS before and after;
(d) disconnect: a whole (non-streamed) answer of about 15 s whose client gives up after 3 s:
    how long its request held the model, against the same answer left to finish.

    .venv/bin/python bench/hardening.py
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

SLOW = "bench/slow"  # 0.05 s a word
PRICE = ["--price-input", "500", "--price-output", "500"]  # USD per 1M tokens: 20 tokens = $0.01


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "modelatlas", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return done.stdout


@contextlib.contextmanager
def server(env: dict):
    port = free_port()
    args = [sys.executable, "-m", "modelatlas", "serve", "--port", str(port), "--model", SLOW]
    log = open(Path(env["MODELATLAS_HOME"]) / "server.log", "w")
    proc = subprocess.Popen([*args, "--queue-size", "64", *PRICE], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{base}/health", timeout=1)
                break
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def ask(base: str, secret: str, words: int, max_tokens: int, timeout: float = 60) -> int:
    body = {
        "model": SLOW,
        "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(words))}],
        "max_tokens": max_tokens,
    }
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        return httpx.post(
            f"{base}/v1/chat/completions", json=body, headers=headers, timeout=timeout
        ).status_code
    except httpx.TimeoutException:
        return 0


def usage(env: dict, key: str) -> dict:
    return json.loads(cli(env, "usage", "--key", key, "--json"))[0]


def burst(base: str, secret: str, n: int = 20) -> list[int]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: ask(base, secret, 10, 10), range(n)))


def bursts(base: str, secret: str, until_refused: bool = True) -> tuple[int, int]:
    """Bursts of 20 (at most 10, or 3 when not ``until_refused``): answered and refused counts."""
    answered = refused = 0
    for _ in range(10 if until_refused else 3):
        codes = burst(base, secret)
        answered, refused = answered + codes.count(200), refused + codes.count(429)
        if until_refused and codes.count(200) == 0:
            break
    return answered, refused


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def big_posts(base: str, n: int = 12, mb: int = 50) -> list[int]:
    body = b"x" * (mb << 20)

    def send(_):
        try:
            return httpx.post(f"{base}/v1/chat/completions", content=body, timeout=60).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(send, range(n)))


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ma-harden-")) / "home"
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    env.pop("MODELATLAS_DATABASE_URL", None)
    code = "from modelatlas.catalog import user; from modelatlas.catalog.records import ModelRecord; "
    code += f"user.add(ModelRecord(id={SLOW!r}, backend='echo', mode='chat', options={{'delay_s': 0.05}}))"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    secrets = {
        name: json.loads(cli(env, "keys", "create", name, "--json", *opts))["secret"]
        for name, opts in (("budget", ["--budget", "0.05"]), ("tpm", ["--tpm", "50"]), ("plain", []))
    }
    with server(env) as (base, pid):
        answered, refused = bursts(base, secrets["budget"])
        spent = usage(env, "budget")["cost_usd"]
        prompt = len(" ".join(f"w{i}" for i in range(10)).encode())  # the reservation's byte bound
        worst = (prompt + 32 + 8 + 10) * 500 / 1e6  # + chat template allowance + max_tokens, priced
        print(
            f"(a) budget $0.05, bursts of 20 at once until all are refused: {answered} answered, "
            f"{refused} refused; spent ${spent:.4f} = {spent / 0.05:.2f}x the budget "
            f"(bound {(0.05 + worst) / 0.05:.2f}x: one request's worst case over)"
        )
        answered, refused = bursts(base, secrets["tpm"], until_refused=False)
        used = usage(env, "tpm")
        tokens = used["input_tokens"] + used["output_tokens"]
        print(
            f"(b) TPM 50, 3 bursts of 20 at once within the minute: {answered} answered, {refused} "
            f"refused; {tokens} tokens = {tokens / 50:.2f}x the limit (bound: one request over)"
        )
        before = rss_mb(pid)
        codes = big_posts(base)
        print(
            f"(c) 12 unauthenticated 50 MB POSTs: statuses {sorted(set(codes))}, RSS {before:.0f} MB -> "
            f"{rss_mb(pid):.0f} MB"
        )
        start = time.perf_counter()
        ask(base, secrets["plain"], 300, 300)
        full = time.perf_counter() - start
        ask(base, secrets["plain"], 300, 300, timeout=3)
        time.sleep(1.0)  # the record is written within a quarter of a second of the request's end
        rows = json.loads(cli(env, "usage", "--key", "plain", "--by", "model", "--json"))
        print(
            f"(d) a whole answer of {full:.1f} s, client gone after 3 s: {rows[0]['requests']} requests, "
            f"{rows[0]['output_tokens']} output tokens metered (300 for the finished one alone)"
        )
        held = _held_seconds(home)
        print(f"    the cancelled request held the model {held:.1f} s = {held / full:.2f}x the full answer")


def _held_seconds(home: Path) -> float:
    import sqlite3

    with sqlite3.connect(home / "modelatlas.db") as db:
        row = db.execute(
            "SELECT latency_s FROM usage_records WHERE key_name = 'plain' AND cancelled = 1"
        ).fetchone()
    return row[0] if row else float("nan")


if __name__ == "__main__":
    main()
