"""32 concurrent clients of the async openai SDK against one `modelatlas serve` subprocess.

Half stream and half do not; about 10% leave mid-way (a stream closed, or a task cancelled,
once the first text has come). Each client completes or is cleanly cancelled, nothing answers a 5xx
except a full queue's 503 with Retry-After (the client then retries after it), and afterwards
the server is healthy: /health answers, a new request goes through, and every queue slot is
free again (a burst of exactly --queue-size requests is accepted whole).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.servers import modelatlas_serve, new_key

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.slow

CHAT = "local/smollm2-135m-instruct"
CLIENTS = 32
QUEUE_SIZE = 24  # below CLIENTS, so a burst may meet a full queue; most go straight through
MAX_TOKENS = 16
# Who leaves mid-way, and how: close the stream, or cancel the task that reads it / waits for it.
CANCELLED = {4: "close", 11: "cancel", 20: "cancel", 28: "close"}


@dataclass
class Served:
    url: str
    secret: str
    log: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    folder = tmp_path_factory.mktemp("serve-load")
    secret = new_key(folder / "home", "serve-load")
    with modelatlas_serve(folder, ["--model", CHAT, "--queue-size", str(QUEUE_SIZE)]) as base:
        yield Served(base, secret, folder / "server.log")


@dataclass
class Tally:
    """What the clients saw, for the assertions and for the report on failure."""

    outcomes: dict[int, str] = field(default_factory=dict)
    busy: int = 0  # 503 answers (each followed by a retry)
    retry_after: list[str] = field(default_factory=list)


def ask(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Client {i}: name a colour and a number."}]


async def streamed(client, i: int, started: asyncio.Event) -> str:
    stream = await client.chat.completions.create(
        model=CHAT,
        messages=ask(i),
        max_tokens=MAX_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = []
    async with stream:  # a cancelled task closes the response on its way out
        async for chunk in stream:
            chunks.append(chunk)
            if chunk.choices and chunk.choices[0].delta.content:
                started.set()
                if CANCELLED.get(i) == "close":  # tokens may come batched: leave at the first
                    await stream.close()  # the client leaves: the server must notice, free the slot
                    return "cancelled"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert reasons and reasons[-1] in ("stop", "length"), f"client {i}: no finish_reason"
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == [], f"client {i}: no usage chunk at the end"
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    return "done"


async def whole(client, i: int, started: asyncio.Event) -> str:
    started.set()
    answer = await client.chat.completions.create(model=CHAT, messages=ask(i), max_tokens=MAX_TOKENS)
    assert answer.object == "chat.completion" and answer.model == CHAT
    assert answer.choices[0].message.content is not None
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert 0 < answer.usage.completion_tokens <= MAX_TOKENS
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    return "done"


async def attempt(client, i: int) -> str:
    """One try; a client marked "cancel" has its task cancelled once it is under way."""
    started = asyncio.Event()
    call = streamed if i % 2 == 0 else whole
    task = asyncio.create_task(call(client, i, started))
    if CANCELLED.get(i) != "cancel":
        return await task
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not task.done():
        await asyncio.sleep(0.05)  # a stream has its first chunk; a request is on its way
        task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"


async def one_client(client, i: int, tally: Tally) -> None:
    """Run client ``i`` to its end, retrying after each 503 as its Retry-After header says."""
    deadline = asyncio.get_running_loop().time() + 300
    while True:
        try:
            tally.outcomes[i] = await attempt(client, i)
            return
        except openai.APIStatusError as exc:
            if exc.status_code != 503 or asyncio.get_running_loop().time() > deadline:
                raise
            retry_after = exc.response.headers.get("retry-after")
            tally.busy += 1
            tally.retry_after.append(str(retry_after))
            assert retry_after is not None, "a 503 without Retry-After"
            await asyncio.sleep(float(retry_after))


async def crowd(served: Served) -> Tally:
    tally = Tally()
    async with openai.AsyncOpenAI(
        base_url=f"{served.url}/v1", api_key=served.secret, max_retries=0, timeout=300
    ) as client:
        results = await asyncio.gather(
            *(one_client(client, i, tally) for i in range(CLIENTS)), return_exceptions=True
        )
    failures = {i: repr(r) for i, r in enumerate(results) if isinstance(r, BaseException)}
    assert not failures, f"clients failed: {failures}"
    return tally


async def burst(served: Served, n: int) -> list[int]:
    """Statuses of ``n`` simultaneous one-token requests."""
    body = {"model": CHAT, "messages": ask(-1), "max_tokens": 1}
    headers = {"Authorization": f"Bearer {served.secret}"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=300) as http:
        responses = await asyncio.gather(*(http.post("/v1/chat/completions", json=body) for _ in range(n)))
    return [r.status_code for r in responses]


def test_32_concurrent_clients_streamed_plain_and_cancelled(served):
    tally = asyncio.run(crowd(served))

    assert sorted(tally.outcomes) == list(range(CLIENTS))
    for i, outcome in tally.outcomes.items():
        expected = ("done", "cancelled") if i in CANCELLED else ("done",)
        assert outcome in expected, f"client {i}: {outcome}"
    assert list(tally.outcomes.values()).count("cancelled") >= 2  # the cancellations happened mid-way
    assert all(float(value) > 0 for value in tally.retry_after)

    # Healthy afterwards: /health, then a new request, then every slot free again.
    assert httpx.get(f"{served.url}/health", timeout=10).json()["status"] == "ok"
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.secret, max_retries=0, timeout=30)
    answer = client.chat.completions.create(model=CHAT, messages=ask(99), max_tokens=4)
    assert answer.choices[0].finish_reason in ("stop", "length")
    statuses = asyncio.run(burst(served, QUEUE_SIZE))
    assert statuses == [200] * QUEUE_SIZE, f"a slot leaked: a burst of --queue-size got {statuses}"

    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log and "unexpected error" not in log, log[-4000:]
