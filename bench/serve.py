"""Serving speed: `modelatlas serve` against llama-cpp-python in-process and `python -m llama_cpp.server`.

Everything in one run, on the same GGUF file (the bundled SmolLM2), the same prompts, greedy
decoding and the same token budget, with the same context size and thread count on every side:

(a) single-stream decode tokens/s: streamed chat completions over HTTP through `modelatlas serve`
    (with an API key) against llama-cpp-python's create_chat_completion called in-process
    (the baseline, resident in its own child process, so two llama.cpp thread teams never
    share a process); `python -m llama_cpp.server` on the same file is reported beside ours.
    The three take turns prompt by prompt. Target: ours / baseline >= 0.9.
(b) 4 concurrent streams: aggregate decode tokens/s against the same server's single-stream
    rate. Target: >= 1.0 for ours (no collapse under concurrency); llama_cpp.server reported.
(c) the p50 latency that authentication and metering add: many small requests (the echo test
    model, max_tokens 1, so no model time) to the same server started with `--no-auth` and with
    a key, interleaved one by one. Target: at most 5 ms.

Decode tokens/s counts from the first token to the last, so time to first token is left out:
(tokens - 1) / (last token time - first token time); for concurrent streams, all their tokens
from the first token of any to the last of any. Tokens are what the server reports in the
stream's usage (`stream_options.include_usage`); llama_cpp.server sends no usage in a stream, so
its tokens are its content chunks (one per token; checked against its non-streamed usage at
warm-up); the in-process baseline's are the usage of the same greedy completion, not streamed.
The ratios are medians of ratios of measurements taken side by side, so load from elsewhere on
the machine cancels out as far as it can.

The server serves the file as bench/smollm2, registered with the context size and thread count
that every side uses (by default those `modelatlas serve` gives the bundled model: the trained
context capped at 8192, every core). On a machine busy with other work, `--threads 1` gives
steadier figures: a llama.cpp thread team that loses a core stalls at every barrier.

    .venv/bin/python bench/serve.py [--quick] [--rounds 5] [--max-tokens 128] [--requests 300]
                                    [--threads N] [--parallel N]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import llama_server

PROMPTS = [
    "Explain what a hash table is.",
    "Write a short poem about autumn leaves.",
    "List three uses of copper.",
    "Why do cats purr?",
]
MODEL = "local/smollm2-135m-instruct"  # its GGUF file is the one every side runs
SERVED = "bench/smollm2"  # the same file, registered with the context and threads of the others
ECHO = "bench/echo"


@dataclass
class Sample:
    """One stream: tokens, and when its first and last tokens arrived (perf_counter seconds)."""

    tokens: int
    first: float
    last: float
    start: float = 0.0  # when the request was sent

    @property
    def ttft(self) -> float:
        """Time to first token, seconds."""
        return self.first - self.start


def decode_rate(samples: list[Sample]) -> float:
    """Tokens/s after the first token, over streams that ran one after another."""
    tokens = sum(s.tokens - 1 for s in samples)
    return tokens / sum(s.last - s.first for s in samples)


def total_rate(samples: list[Sample]) -> float:
    """Tokens/s with the time to first token included, over streams run one after another."""
    return sum(s.tokens for s in samples) / sum(s.last - s.start for s in samples)


def aggregate_rate(samples: list[Sample]) -> float:
    """Tokens/s of streams that ran at once, from the first token of any to the last of any."""
    span = max(s.last for s in samples) - min(s.first for s in samples)
    return (sum(s.tokens for s in samples) - 1) / span


def model_file() -> tuple[str, int]:
    """The GGUF file and the context size `modelatlas serve` gives it (trained, capped)."""
    from modelatlas.backends.llamacpp_engine import DEFAULT_MAX_CTX, trained_context
    from modelatlas.catalog.bundled import resolve_bundled

    path = resolve_bundled(MODEL).location
    return path, min(trained_context(path) or DEFAULT_MAX_CTX, DEFAULT_MAX_CTX)


# -- the baseline: llama-cpp-python in its own (child) process ------------------------------------


def in_process_worker(max_tokens: int, threads: int) -> None:
    """The child: load the model, count each prompt's tokens (untimed, not streamed), say "ready",
    then for each prompt index read on stdin, stream that prompt and print [tokens, first, last]."""
    import llama_cpp

    path, n_ctx = model_file()
    llm = llama_cpp.Llama(
        model_path=path, n_ctx=n_ctx, n_batch=min(512, n_ctx), n_threads=threads, verbose=False
    )
    greedy = {"max_tokens": max_tokens, "temperature": 0.0, "top_k": 1, "seed": 0}
    answers = []
    for prompt in PROMPTS:  # warm-up, and the token count of each (deterministic) answer
        out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], **greedy)
        answers.append((out["usage"]["completion_tokens"], out["choices"][0]["message"]["content"]))
    print("ready", flush=True)
    for line in sys.stdin:
        prompt = PROMPTS[int(line)]
        first = last = 0.0
        parts = []
        messages = [{"role": "user", "content": prompt}]
        start = time.perf_counter()
        for chunk in llm.create_chat_completion(messages=messages, stream=True, **greedy):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                last = time.perf_counter()
                first = first or last
                parts.append(piece)
        tokens, text = answers[int(line)]
        if "".join(parts) != text:
            print(f"warning: the streamed answer to {prompt!r} differs from the counted one", file=sys.stderr)
        print(json.dumps([tokens, first, last, start]), flush=True)


class Baseline:
    """The in-process baseline, resident in a child process like the servers are."""

    def __init__(self, max_tokens: int, threads: int):
        cmd = [sys.executable, __file__, "--side", "in-process", "--max-tokens", str(max_tokens)]
        cmd += ["--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the in-process baseline did not start")

    def stream(self, index: int) -> Sample:
        self.proc.stdin.write(f"{index}\n")
        self.proc.stdin.flush()
        return Sample(*json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# -- servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str  # the API root, …/v1
    model: str
    headers: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running(args: list[str], port: int, ready: str, log: Path, env: dict[str, str]):
    """``python ARGS`` as a server on 127.0.0.1:``port`` until the block ends; stopped by its pid."""
    return llama_server.serving([sys.executable, *args], f"http://127.0.0.1:{port}{ready}", log, env)


def ours_args(port: int, auth: bool, parallel: int | None = None) -> list[str]:
    args = ["-m", "modelatlas", "serve", "--model", SERVED, "--model", ECHO, "--port", str(port)]
    if parallel is not None:
        args += ["--parallel", str(parallel)]
    return args if auth else [*args, "--no-auth"]


def llama_server_args(port: int, threads: int) -> list[str]:
    path, n_ctx = model_file()
    return [
        *("-m", "llama_cpp.server", "--model", path, "--model_alias", "smollm2"),
        *("--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)),
        *("--n_batch", str(min(512, n_ctx)), "--n_threads", str(threads), "--verbose", "False"),
        # By default a new request cuts the running stream off mid-message; queue them instead,
        # as ours does, so every stream completes and the two servers do the same work.
        *("--interrupt_requests", "False"),
    ]


def cpp_server_args(threads: int, parallel: int) -> list[str]:
    """llama-server on the same file with the same context per slot as ours: ``parallel``
    slots of the context `modelatlas serve` gives each (capped as its batcher caps them)."""
    from modelatlas.backends.llamacpp_batch import MAX_CELLS

    path, n_ctx = model_file()
    per_slot = min(n_ctx, MAX_CELLS // parallel)
    return [
        *("-m", path, "--alias", "smollm2", "-c", str(per_slot * parallel), "-np", str(parallel)),
        *("-t", str(threads), "-tb", str(threads), "-b", str(min(512, n_ctx)), "--no-webui"),
    ]


def prepare_home(home: Path, threads: int) -> tuple[dict[str, str], str]:
    """The environment of a fresh home with the served models registered, and a new key's secret."""
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    env.pop("MODELATLAS_DATABASE_URL", None)
    path, n_ctx = model_file()
    options = {"n_ctx": n_ctx, "n_threads": threads}
    register = (
        "from modelatlas.catalog import user; from modelatlas.catalog.records import ModelRecord; "
        f"user.add(ModelRecord(id={SERVED!r}, backend='llamacpp', location={path!r}, options={options!r})); "
        f"user.add(ModelRecord(id={ECHO!r}, backend='echo'))"
    )
    subprocess.run([sys.executable, "-c", register], env=env, check=True)
    cmd = [sys.executable, "-m", "modelatlas", "keys", "create", "bench", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return env, json.loads(done.stdout)["secret"]


# -- clients ------------------------------------------------------------------------------------


async def stream_one(http: httpx.AsyncClient, server: Server, prompt: str, max_tokens: int) -> Sample:
    """One streamed, greedy chat completion, read as server-sent events."""
    body = {
        "model": server.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    first = last = 0.0
    chunks, usage = 0, None
    url = f"{server.url}/chat/completions"
    start = time.perf_counter()
    async with http.stream("POST", url, json=body, headers=server.headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                usage = event["usage"]["completion_tokens"]
            if any(c.get("delta", {}).get("content") for c in event.get("choices", [])):
                last = time.perf_counter()
                first = first or last
                chunks += 1
    return Sample(usage if usage is not None else chunks, first, last, start)


async def stream_alone(server: Server, prompt: str, max_tokens: int) -> Sample:
    async with httpx.AsyncClient(timeout=300) as http:
        return await stream_one(http, server, prompt, max_tokens)


async def streams(server: Server, max_tokens: int, together: bool) -> list[Sample]:
    """Every prompt streamed, one after another or all at once."""
    async with httpx.AsyncClient(timeout=300) as http:
        if together:
            jobs = (stream_one(http, server, p, max_tokens) for p in PROMPTS)
            return list(await asyncio.gather(*jobs))
        return [await stream_one(http, server, p, max_tokens) for p in PROMPTS]


def check_chunk_counts(server: Server, max_tokens: int) -> str:
    """Whether a stream's chunk count equals the completion tokens the server reports whole."""
    streamed = asyncio.run(streams(server, max_tokens, together=False))
    reported = []
    for prompt in PROMPTS:
        body = {"model": server.model, "messages": [{"role": "user", "content": prompt}]}
        body |= {"max_tokens": max_tokens, "temperature": 0.0}
        answer = httpx.post(f"{server.url}/chat/completions", json=body, headers=server.headers, timeout=300)
        reported.append(answer.json()["usage"]["completion_tokens"])
    counted = [s.tokens for s in streamed]
    same = "equal" if counted == reported else "DIFFERENT"
    return f"{server.name}: streamed chunks {counted} vs reported tokens {reported}: {same}"


def latencies(servers: list[Server], requests: int) -> dict[str, list[float]]:
    """Milliseconds per small request, the servers taking turns (order alternating)."""
    body = {"model": ECHO, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    clients = {s.name: httpx.Client(base_url=s.url, headers=s.headers, timeout=30) for s in servers}
    times: dict[str, list[float]] = {s.name: [] for s in servers}
    try:
        for i in range(requests + 20):  # the first 20 of each warm up
            for server in servers if i % 2 == 0 else servers[::-1]:
                start = time.perf_counter()
                response = clients[server.name].post("/chat/completions", json=body)
                elapsed = (time.perf_counter() - start) * 1000
                response.raise_for_status()
                if i >= 20:
                    times[server.name].append(elapsed)
    finally:
        for client in clients.values():
            client.close()
    return times


# -- the run ------------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(args, base: Baseline, sides: dict[str, Server]) -> tuple[dict[str, list[float]], dict]:
    """Rates and times to first token. Single streams take turns prompt by prompt (the side
    that goes first rotating), so load from elsewhere on the machine hits the sides of a turn
    alike: "base", "ours1", "peer1" and "cpp1" hold one decode rate per stream, aligned turn by
    turn, and "<side>1t" the same streams' rates with the time to first token included. Per
    round: "<side>1r" (the round's single streams together), then "<side>4" (4 at once, from
    the first token) and "<side>4t" (4 at once, from the requests' start)."""
    for server in sides.values():  # warm-up: models loaded, every side's caches as in use
        asyncio.run(streams(server, args.max_tokens, together=False))
    single = {"base": base.stream}
    for key, server in sides.items():
        single[f"{key}1"] = functools.partial(
            lambda s, i: asyncio.run(stream_alone(s, PROMPTS[i], args.max_tokens)), server
        )
    rates: dict[str, list[float]] = collections.defaultdict(list)
    ttfts: dict[str, list[float]] = collections.defaultdict(list)
    for round_ in range(args.rounds):
        progress(f"round {round_ + 1} of {args.rounds}")
        samples: dict[str, list[Sample]] = {key: [] for key in single}
        for i in range(len(PROMPTS)):
            turn = (round_ + i) % len(single)
            for key in list(single)[turn:] + list(single)[:turn]:
                sample = single[key](i)
                samples[key].append(sample)
                rates[key].append(decode_rate([sample]))
                rates[f"{key}t"].append(total_rate([sample]))
                ttfts[key].append(sample.ttft * 1000)
        for key in sides:
            rates[f"{key}1r"].append(decode_rate(samples[f"{key}1"]))
        order = list(sides.items())
        for key, server in order[round_ % len(order) :] + order[: round_ % len(order)]:
            together = asyncio.run(streams(server, args.max_tokens, True))
            rates[f"{key}4"].append(aggregate_rate(together))
            rates[f"{key}4t"].append(aggregate_total(together))
            ttfts[f"{key}4"].extend(s.ttft * 1000 for s in together)
    return rates, ttfts


def aggregate_total(samples: list[Sample]) -> float:
    """Tokens/s of streams sent at once, from the first request to the last token."""
    return sum(s.tokens for s in samples) / (max(s.last for s in samples) - min(s.start for s in samples))


def paired(top: list[float], bottom: list[float]) -> float:
    """The median of the ratios of measurements taken side by side."""
    return statistics.median(a / b for a, b in zip(top, bottom))


NAMES = {
    "ours": "modelatlas serve",
    "cpp": "llama-server (C++)",
    "peer": "llama_cpp.server",
}


def report(
    args, rates: dict[str, list[float]], ttfts: dict, times: dict[str, list[float]], check: str
) -> None:
    path, n_ctx = model_file()
    print(
        f"model: {Path(path).name} (bundled as {MODEL}; served as {SERVED}), n_ctx {n_ctx}, "
        f"{args.threads} threads on every side; {len(PROMPTS)} prompts, max_tokens {args.max_tokens}, "
        f"greedy; {args.rounds} round(s); serve --parallel {args.parallel}, llama-server -np {args.parallel}"
    )
    print(f"llama-server: {args.cpp_binary} (llama-cpp-python {args.cpp_version}'s llama.cpp)")
    print(f"machine load average: {args.load} at the start, {os.getloadavg()[0]:.2f} at the end")
    print(f"token count check: {check}")
    print(f"\n{'tokens/s':52s} {'median':>8s} {'min':>8s} {'max':>8s}  over")
    rows = [("base", "llama-cpp-python in-process, decode (baseline)")]
    for key, name in NAMES.items():
        rows += [
            (f"{key}1", f"{name}, 1 stream, decode"),
            (f"{key}1t", f"{name}, 1 stream, first token included"),
            (f"{key}4", f"{name}, 4 streams, decode (aggregate)"),
            (f"{key}4t", f"{name}, 4 streams, first token included"),
        ]
    for key, name in rows:
        values, over = rates[key], "rounds" if "4" in key else "streams"
        print(f"{name:52s} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}  {over}")
    print(f"\n{'time to first token, ms':52s} {'median':>8s} {'min':>8s} {'max':>8s}")
    for key, name in NAMES.items():
        for streams_, label in ((f"{key}1", "1 stream"), (f"{key}4", "4 streams")):
            values = ttfts[streams_]
            spread = f"{statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}"
            print(f"{name + ', ' + label:52s} {spread}")
    print(f"\n{f'latency, {ECHO} max_tokens 1, {args.requests} each':52s} {'p50 ms':>8s} {'p90 ms':>8s}")
    for name, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{name:52s} {statistics.median(values):8.2f} {p90:8.2f}")
    one = paired(rates["ours1t"], rates["cpp1t"])
    four = paired(rates["ours4t"], rates["cpp4t"])
    decode = paired(rates["ours1"], rates["cpp1"])
    ttft = statistics.median(ttfts["ours1"]) / statistics.median(ttfts["cpp1"])
    ratio_a, peer_a = paired(rates["ours1"], rates["base"]), paired(rates["peer1"], rates["base"])
    ratio_b, cpp_b = paired(rates["ours4"], rates["ours1r"]), paired(rates["cpp4"], rates["cpp1r"])
    added = statistics.median(times["modelatlas serve"]) - statistics.median(
        times["modelatlas serve --no-auth"]
    )
    print("\nratios: medians of side-by-side pairs (turn by turn, or round by round for 4 streams)")
    target("serve / llama-server, 1 stream, first token included", one, ">=", 1.0)
    target("serve / llama-server, 4 streams, aggregate", four, ">=", 1.0)
    target("serve / llama-server, decode tokens/s, 1 stream", decode, ">=", 0.95)
    target("time to first token, serve / llama-server", ttft, "<=", 1.5)
    target("serve / in-process, 1 stream decode", ratio_a, ">=", 0.9)
    print(f"    llama_cpp.server / in-process: {peer_a:.3f}")
    target("serve, 4 streams / 1 stream", ratio_b, ">=", 1.0)
    print(f"    llama-server, 4 / 1: {cpp_b:.3f}")
    target("p50 ms added by auth + metering", added, "<=", 5.0)


def target(label: str, value: float, op: str, bound: float) -> None:
    ok = value >= bound if op == ">=" else value <= bound
    print(f"{label + ':':56s} {value:7.3f}  target {op} {bound:g}  {verdict(ok)}")


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, 64 tokens, 100 latency requests")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=300, help="small requests per server for (c)")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads on every side"
    )
    parser.add_argument(
        "--parallel", type=int, default=4, help="`modelatlas serve --parallel N` and llama-server -np N"
    )
    parser.add_argument("--side", choices=["in-process"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # child process: the baseline alone, so its llama.cpp thread team runs alone
        in_process_worker(args.max_tokens, args.threads)
        return
    if args.quick:
        args.rounds, args.max_tokens, args.requests = 2, 64, 100
    args.load = f"{os.getloadavg()[0]:.2f}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out

    args.cpp_binary = llama_server.binary(say=progress)
    args.cpp_version = llama_server.version()
    home = Path(tempfile.mkdtemp(prefix="modelatlas-bench-serve-"))
    progress(f"starting servers (logs in {home})")
    env, secret = prepare_home(home / "home", args.threads)
    ports = [free_port() for _ in range(4)]
    key = {"Authorization": f"Bearer {secret}"}
    ours = Server("modelatlas serve", f"http://127.0.0.1:{ports[0]}/v1", SERVED, key)
    open_ = Server("modelatlas serve --no-auth", f"http://127.0.0.1:{ports[1]}/v1", SERVED, {})
    peer = Server("llama_cpp.server", f"http://127.0.0.1:{ports[2]}/v1", "smollm2", {})
    cpp = Server("llama-server", f"http://127.0.0.1:{ports[3]}/v1", "smollm2", {})
    with contextlib.ExitStack() as stack:
        procs = {}
        for name, port, args_, log, ready in (
            ("ours", ports[0], ours_args(ports[0], True, args.parallel), "ours.log", "/health"),
            ("open", ports[1], ours_args(ports[1], False, args.parallel), "open.log", "/health"),
            ("peer", ports[2], llama_server_args(ports[2], args.threads), "peer.log", "/v1/models"),
        ):
            procs[name] = stack.enter_context(running(args_, port, ready, home / log, env))
        cpp_args = cpp_server_args(args.threads, args.parallel)
        log = home / "llama-server.log"
        procs["cpp"] = stack.enter_context(llama_server.running(cpp_args, ports[3], log))
        base = Baseline(args.max_tokens, args.threads)
        stack.callback(base.close)
        progress("servers ready")
        check = check_chunk_counts(peer, args.max_tokens)  # also its warm-up
        rates, ttfts = measure(args, base, {"ours": ours, "cpp": cpp, "peer": peer})
        memory = {NAMES[k]: llama_server.peak_rss_mib(procs[k].pid) for k in NAMES}
        progress("decode measured; now latency")
        times = latencies([open_, ours], args.requests)
    report(args, rates, ttfts, times, check)
    print("\npeak resident memory after the streams (VmHWM), MiB")
    for name, mib in memory.items():
        print(f"{name:52s} {mib:8.1f}")
    print(f"\nserver logs: {home}")


if __name__ == "__main__":
    main()
