"""schemathesis against `modelatlas serve`'s own /openapi.json: no 5xx, no 422, errors in OpenAI's envelope.

The server runs as a subprocess with authentication on, and every generated request carries a
valid key, so the fuzzing goes through the same path as real traffic: key check, limits, the
route, metering. The models are the deterministic echo backend (one chat, one embedding model),
so a case costs milliseconds. A separate test checks that the same operations without a key, or
with a wrong one, answer 401 in the envelope.

Each operation is fuzzed with schemathesis' positive (valid per the schema) and negative
(invalid) data, with Hypothesis derandomized so that CI sees the same cases every run. In
positive cases the ``model`` is often swapped for a served one, so generation runs too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import modelatlas_serve, new_key

schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402  (schemathesis brings it)
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

pytestmark = pytest.mark.slow

CHAT = "test/echo"
EMBED = "test/echo-embed"
EXAMPLES = 60  # per operation and generation mode: well above 300 cases in all
MIN_CASES = 300
ENVELOPE = {"message", "type", "param", "code"}
NEVER = {422: "a validation error must be a 400", 401: "a valid key was refused", 403: "", 429: ""}


@dataclass
class Served:
    url: str
    secret: str
    log: Path


def register_echo_models(home: str) -> None:
    """Two deterministic models in the server's home: instant answers and vectors."""
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELATLAS_HOME", home)
        user.add(ModelRecord(id=CHAT, backend="echo", context_length=4096))
        user.add(ModelRecord(id=EMBED, backend="echo", mode="embedding", options={"dimensions": 16}))


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    folder = tmp_path_factory.mktemp("serve-schema")
    register_echo_models(str(folder / "home"))
    secret = new_key(folder / "home", "serve-schema")
    with modelatlas_serve(folder, ["--model", CHAT, "--model", EMBED]) as base:
        yield Served(base, secret, folder / "server.log")


@pytest.fixture(scope="module")
def schema(served):
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


def operations(schema) -> list:
    found = [result.ok() for result in schema.get_all_operations()]
    assert found, "the OpenAPI document lists no operations"
    return found


def problem_of(response: schemathesis.Response) -> str | None:
    """What is wrong with this answer, if anything."""
    status = response.status_code
    if status >= 500:
        return f"{status}: a server error"
    if status in NEVER:
        return f"{status}: {NEVER[status] or 'unexpected with an unlimited key'}"
    if status < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"{status}: the error is not JSON"
    if not (isinstance(body, dict) and set(body) == {"error"} and set(body["error"]) == ENVELOPE):
        return f"{status}: not OpenAI's error envelope"
    if "Traceback" in body["error"]["message"] or "pydantic" in body["error"]["message"]:
        return f"{status}: the message leaks internals"
    return None


def problem_of_401(response: schemathesis.Response) -> str | None:
    """A 401 for a missing or mangled key is right; it must still be the envelope."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return "401: the error is not JSON"
    if not (isinstance(body, dict) and set(body.get("error", {})) == ENVELOPE):
        return "401: not OpenAI's error envelope"
    return None


def conformance_problem(case, response: schemathesis.Response) -> str | None:
    """A whole JSON answer must match the response schema the document declares for it."""
    content_type = (response.headers.get("content-type") or [""])[0]
    if response.status_code != 200 or not content_type.startswith("application/json"):
        return None
    try:
        case.validate_response(response, checks=[response_schema_conformance])
    except Exception as exc:  # schemathesis raises its failure group
        return f"200 but the body does not match the declared schema: {exc!s:.300}"
    return None


def fuzz(operation, mode: GenerationMode, served: Served, session, tally: Counter, problems: list) -> None:
    """Send ``EXAMPLES`` generated cases of one operation; record each status and any problem."""
    served_models = st.sampled_from([CHAT, EMBED, None])  # the first is the likeliest
    swap = mode == GenerationMode.POSITIVE
    headers = {"Authorization": f"Bearer {served.secret}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every failing case is recorded
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), model=served_models)
    def run(case, model):
        if swap and model is not None and isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = model
        response = case.call(base_url=served.url, session=session, headers=headers, timeout=30)
        tally[(operation.label, mode.value, response.status_code)] += 1
        sent_key = response.request.headers.get("Authorization") == headers["Authorization"]
        if response.status_code == 401 and not sent_key:  # a negative case mangled the key itself
            problem = problem_of_401(response)
        else:
            problem = problem_of(response) or conformance_problem(case, response)
        if problem:
            body = case.body if case.body is not None else case.query
            problems.append(f"{operation.label} [{mode.value}] {problem}; sent {body!r:.300}")

    run()


def test_fuzzing_the_openapi_document_finds_no_server_errors(served, schema):
    tally: Counter = Counter()
    problems: list[str] = []
    with requests.Session() as session:
        for operation in operations(schema):
            modes = [GenerationMode.POSITIVE]
            if operation.body or operation.query:  # nothing to make invalid otherwise
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                fuzz(operation, mode, served, session, tally, problems)

    total = sum(tally.values())
    print(f"\n{total} generated cases (operation, mode, status: count):")
    for key, n in sorted(tally.items()):
        print(f"  {key}: {n}")
    assert total >= MIN_CASES
    assert not problems, f"{len(problems)} bad answers, e.g.:\n" + "\n".join(problems[:15])
    ok = sum(n for (label, mode, status), n in tally.items() if status == 200 and label.startswith("POST"))
    assert ok >= 20, "too few generated requests reached a model: the fuzzing only met validation"
    assert httpx.get(f"{served.url}/health").json()["status"] == "ok"
    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log, "bad input left stack traces in the server log:\n" + log[-3000:]


def test_without_a_valid_key_every_model_route_is_401(served, schema):
    bodies = {
        "/v1/chat/completions": {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]},
        "/v1/completions": {"model": CHAT, "prompt": "hi"},
        "/v1/responses": {"model": CHAT, "input": "hi"},
        "/v1/embeddings": {"model": EMBED, "input": "hi"},
        "/v1/audio/transcriptions": {"model": CHAT},  # the key is checked before the body is read
        "/v1/images/generations": {"model": CHAT, "prompt": "a cat"},
        "/tokenize": {"model": CHAT, "prompt": "hi"},
        "/detokenize": {"model": CHAT, "tokens": [1]},
    }
    paths = {op.path for op in operations(schema)}
    assert set(bodies) <= paths
    # A generated picture's URL is its own secret (random, short-lived): no key, as OpenAI's.
    files = "/v1/images/files/{name}"
    assert httpx.get(f"{served.url}/v1/images/files/{'a' * 43}.png").status_code == 404
    for path in sorted(paths - {"/health", "/metrics", files}):
        for headers in ({}, {"Authorization": "Bearer ma-0000-wrong"}, {"Authorization": "Basic abc"}):
            if path in bodies:
                response = httpx.post(f"{served.url}{path}", json=bodies[path], headers=headers)
            else:
                response = httpx.get(f"{served.url}{path}", headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            error = response.json()["error"]
            assert set(error) == ENVELOPE and error["type"] == "authentication_error"
            assert served.secret not in response.text
    assert httpx.get(f"{served.url}/health").status_code == 200  # the probe stays open
