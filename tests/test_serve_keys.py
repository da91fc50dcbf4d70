"""API keys, limits and metering of `modelatlas serve`: a real server subprocess, real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from tests.servers import home_env, modelatlas_serve

openai = pytest.importorskip("openai")

FAST = "test/fast"  # echo models: instant answers, so limits and metering are tested, not speed
SLOW = "test/slow"
WINDOW_S = 3.0


@contextlib.contextmanager
def at_home(path):
    """Run store calls of this process against the server's home."""
    before = os.environ.get("MODELATLAS_HOME")
    os.environ["MODELATLAS_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MODELATLAS_HOME", None)
        else:
            os.environ["MODELATLAS_HOME"] = before


def cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "modelatlas", *args], env=env, capture_output=True, text=True, timeout=120
    )


def new_key(home, name: str, *options: str) -> str:
    done = cli(home, "keys", "create", name, "--json", *options)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["secret"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    home = folder / "home"
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord

    with at_home(home):
        user.add(ModelRecord(id=FAST, backend="echo", mode="chat"))
        user.add(ModelRecord(id=SLOW, backend="echo", mode="chat", options={"delay_s": 0.05}))
    prices = folder / "prices.yaml"
    prices.write_text(f"{FAST}: {{input: 1000, output: 2000}}\n")
    env = home_env(home, MODELATLAS_RATE_WINDOW_S=str(WINDOW_S))
    with modelatlas_serve(folder, ["--model", FAST, "--model", SLOW, "--prices", str(prices)], env) as base:
        yield base, home


def chat(base: str, secret: str | None, model: str = FAST, text: str = "one two three", **extra):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=30)


def test_missing_wrong_and_revoked_keys_are_401(served):
    base, home = served
    for secret in (None, "not-a-key", "ma-000000000000-forged"):
        answer = chat(base, secret)
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "authentication_error"
        assert "modelatlas keys create" in answer.json()["error"]["message"]
    secret = new_key(home, "soon-revoked")
    assert chat(base, secret).status_code == 200
    assert cli(home, "keys", "revoke", "soon-revoked").returncode == 0
    time.sleep(1.1)  # verified keys are remembered for one second
    answer = chat(base, secret)
    assert answer.status_code == 401 and "revoked" in answer.json()["error"]["message"]


def test_health_and_openapi_need_no_key(served):
    base, _ = served
    assert httpx.get(f"{base}/health").status_code == 200
    assert httpx.get(f"{base}/openapi.json").status_code == 200
    assert httpx.get(f"{base}/v1/models").status_code == 401


def test_a_key_limited_to_models_gets_403_elsewhere(served):
    base, home = served
    secret = new_key(home, "fast-only", "--models", FAST)
    assert chat(base, secret, FAST).status_code == 200
    denied = chat(base, secret, SLOW)
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_error"
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
    assert [m.id for m in client.models.list().data] == [FAST]


def test_rpm_twice_over_the_limit_is_accepted_within_one_of_it_per_window(served):
    base, home = served
    rpm = 4
    secret = new_key(home, "rpm", "--rpm", str(rpm))
    start = time.monotonic()
    accepted = [0, 0]
    refused = []
    for i in range(4 * rpm):  # two windows at twice the rate
        time.sleep(max(0.0, start + i * WINDOW_S / (2 * rpm) - time.monotonic()))
        answer = chat(base, secret)
        window = min(1, int((time.monotonic() - start) // WINDOW_S))
        if answer.status_code == 200:
            accepted[window] += 1
            assert answer.headers["x-ratelimit-limit-requests"] == str(rpm)
        else:
            assert answer.status_code == 429
            refused.append(answer)
    assert all(abs(n - rpm) <= 1 for n in accepted), accepted
    for answer in refused:
        assert answer.json()["error"]["type"] == "rate_limit_error"
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.headers["x-ratelimit-remaining-requests"] == "0"
        assert answer.headers["x-ratelimit-reset-requests"]


def test_tpm_limit_answers_429_once_the_tokens_are_used(served):
    base, home = served
    secret = new_key(home, "tpm", "--tpm", "12")
    first = chat(base, secret, text="a b c d e f g h")  # 8 in + 8 out = 16 tokens
    assert first.status_code == 200
    over = chat(base, secret)
    assert over.status_code == 429
    assert over.headers["x-ratelimit-limit-tokens"] == "12"
    assert over.headers["x-ratelimit-remaining-tokens"] == "0"
    assert "tokens" in over.json()["error"]["message"]


def test_budget_runs_out_and_answers_429(served):
    base, home = served
    # test/fast costs $1000 per 1M input and $2000 per 1M output: 3 + 3 tokens = $0.009
    secret = new_key(home, "budget", "--budget", "0.02")
    codes = [chat(base, secret).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    last = chat(base, secret)
    assert last.json()["error"]["code"] == "insufficient_quota"
    assert "budget" in last.json()["error"]["message"]


def test_metered_tokens_equal_the_usage_in_the_responses(served):
    base, home = served
    secret = new_key(home, "meter")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
    seen = [0, 0]

    def add(usage):
        seen[0] += usage.prompt_tokens
        seen[1] += usage.completion_tokens

    add(client.chat.completions.create(model=FAST, messages=[{"role": "user", "content": "a b c"}]).usage)
    add(client.completions.create(model=FAST, prompt="x y z w").usage)
    stream = client.chat.completions.create(
        model=FAST,
        messages=[{"role": "user", "content": "p q r s t"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage]
    add(usage[0])
    report = httpx.get(f"{base}/v1/usage", headers={"Authorization": f"Bearer {secret}"}).json()
    assert report["key"] == "meter" and report["requests"] == 3
    assert [report["input_tokens"], report["output_tokens"]] == seen
    assert report["cost_usd"] == pytest.approx((seen[0] * 1000 + seen[1] * 2000) / 1e6)
    done = cli(home, "usage", "--key", "meter", "--by", "model", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows[0]["model"] == FAST
    assert [rows[0]["input_tokens"], rows[0]["output_tokens"]] == seen


def test_a_stream_the_client_leaves_is_metered_for_what_was_sent(served):
    base, home = served
    secret = new_key(home, "leaver")
    words = " ".join(f"w{i}" for i in range(60))  # 60 tokens at 0.05 s each: 3 s if read to the end
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"model": SLOW, "messages": [{"role": "user", "content": words}], "stream": True}
    received = 0
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: {") and '"content":"w' in line.replace(" ", ""):
                received += 1
            if received >= 5:
                break
    time.sleep(1.0)  # the server notices, stops the model and meters within the flush interval
    report = httpx.get(f"{base}/v1/usage", headers=headers).json()
    assert report["requests"] == 1
    assert report["input_tokens"] == 60
    assert received <= report["output_tokens"] < 30


def test_usage_cli_groups_by_day_model_and_key(served):
    base, home = served
    secret = new_key(home, "grouped")
    assert chat(base, secret).status_code == 200
    time.sleep(0.5)
    for by in ("day", "model", "key"):
        done = cli(home, "usage", "--by", by, "--json")
        assert done.returncode == 0, done.stderr
        assert any(row["requests"] >= 1 for row in json.loads(done.stdout))
    table = cli(home, "usage", "--by", "key")
    assert "grouped" in table.stdout and "total" in table.stdout
    bad = cli(home, "usage", "--by", "week")
    assert bad.returncode == 2 and "day, model, key" in bad.stderr
    unknown = cli(home, "usage", "--key", "groupd")
    assert unknown.returncode == 2 and "grouped" in unknown.stderr


def test_secrets_are_shown_once_and_never_stored(served):
    _, home = served
    secret = new_key(home, "secretive")
    listed = cli(home, "keys", "list", "--json")
    assert secret not in listed.stdout and "secretive" in listed.stdout
    table = cli(home, "keys", "list")
    assert "secretive" in table.stdout and secret not in table.stdout
    with sqlite3.connect(home / "modelatlas.db") as db:
        dump = "\n".join(db.iterdump())
    assert secret not in dump and secret.split("-")[-1] not in dump
    again = cli(home, "keys", "create", "secretive")
    assert again.returncode == 2 and "exists already" in again.stderr


def test_no_auth_is_refused_off_loopback(tmp_path):
    done = cli(tmp_path, "serve", "--no-auth", "--host", "0.0.0.0", "--model", FAST)
    assert done.returncode == 2
    assert "--no-auth is refused" in done.stderr


def test_expired_key_is_refused():
    import asyncio
    from datetime import UTC, datetime, timedelta

    from modelatlas.errors import AuthenticationError
    from modelatlas.serve.auth import Gate
    from modelatlas.serve.limits import RateLimiter
    from modelatlas.store.keys import create_key

    _, secret = create_key("old", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    _, fresh = create_key("new", expires_at=datetime.now(UTC) + timedelta(days=1))
    gate = Gate(True, RateLimiter())
    assert asyncio.run(gate.authenticate(f"Bearer {fresh}")).name == "new"
    with pytest.raises(AuthenticationError, match="expired"):
        asyncio.run(gate.authenticate(f"Bearer {secret}"))


def test_expires_option_is_checked(tmp_path):
    past = cli(tmp_path, "keys", "create", "late", "--expires", "2020-01-01")
    assert past.returncode == 2 and "in the past" in past.stderr
    wrong = cli(tmp_path, "keys", "create", "late", "--expires", "soon")
    assert wrong.returncode == 2 and "not a date" in wrong.stderr
    ok = cli(tmp_path, "keys", "create", "later", "--expires", "30d", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["expires_at"]
