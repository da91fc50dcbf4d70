"""Hardening of the studio (issue 11): it answers only at its own address (DNS rebinding), and
the playground never tells a page whether a file exists on this machine.

One real `modelatlas studio` subprocess on 127.0.0.1 serves the whole module, on a home folder of
its own; the tests point MODELATLAS_HOME at it to read what the studio stored."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.routing import APIRoute

from modelatlas.hosts import host_allowed
from tests.servers import free_port, python_server

EVIL = "evil.example"
ALSO = "studio.example"  # given with --allow-host


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The studio on a free port with ``--allow-host studio.example``: (base URL, port, home)."""
    home = tmp_path_factory.mktemp("studio-home")
    port = free_port()
    env = dict(os.environ, MODELATLAS_HOME=str(home))
    args = ["-m", "modelatlas", "studio", "--port", str(port), "--allow-host", ALSO]
    log = str(home.parent / "studio.log")
    with python_server(args, port, ready_path="/favicon.ico", timeout=60, log_path=log, env=env):
        yield f"http://127.0.0.1:{port}", port, home


@pytest.fixture
def studio_home(served, monkeypatch):
    monkeypatch.setenv("MODELATLAS_HOME", str(served[2]))
    return served[2]


def routes(method: str) -> list[str]:
    """Every path of the studio app that answers ``method``, path parameters filled in: the
    routes as the app holds them (FastAPI keeps an included router as one entry that points at
    it) and, in case a FastAPI version hides them otherwise, the OpenAPI schema's paths."""
    from modelatlas.studio import create_app

    app = create_app()
    paths = {path for path, methods in _walk(app.routes) if method in methods}
    paths |= {p for p, ops in app.openapi()["paths"].items() if method.lower() in ops}
    return sorted({re.sub(r"\{[^}]+\}", "x", path) for path in paths})


def _walk(routes) -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route.path, route.methods
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)


def as_host(base: str, method: str, path: str, host: str, **kwargs) -> httpx.Response:
    """A request to the studio at 127.0.0.1 that says it is for ``host`` (what a browser sends
    after DNS rebinding: Host and Origin both name the attacker's site)."""
    headers = {"Host": host, "Origin": f"http://{host}"}
    return httpx.request(method, f"{base}{path}", headers=headers, timeout=30, **kwargs)


def refused(response: httpx.Response) -> bool:
    return response.status_code == 400 and response.text.startswith("Refused: this studio answers only")


# --- DNS rebinding --------------------------------------------------------------------------


def test_every_post_route_refuses_a_foreign_host_even_with_a_matching_origin(served, studio_home):
    from modelatlas.store.jobs import list_jobs
    from modelatlas.store.keys import create_key, list_keys

    base, port, _ = served
    create_key("kept")  # for the revoke route: a refused revoke must leave it active
    before = [(k.name, k.active) for k in list_keys()]
    posts = routes("POST")
    assert {"/deployments/keys", "/deployments/keys/x/revoke", "/api/playground/stream"} <= set(posts)
    # The reproduction first: this answered 200 with a new key's secret.
    for path in ["/deployments/keys", *posts, "/deployments/keys/kept/revoke"]:
        for body in ({"data": {"name": "planted"}}, {"json": {"name": "planted", "models": ["x"]}}):
            answer = as_host(base, "POST", path, f"{EVIL}:{port}", **body)
            assert refused(answer), (path, answer.status_code, answer.text[:200])
            assert "ma-" not in answer.text
    assert [(k.name, k.active) for k in list_keys()] == before
    assert ("kept", True) in before and "planted" not in [k.name for k in list_keys()]
    assert list_jobs() == []


def test_pages_refuse_a_foreign_host(served):
    base, port, _ = served
    gets = routes("GET")
    assert {"/catalog", "/playground", "/deployments", "/runs"} <= set(gets)
    for path in [*gets, "/static/studio.css", "/no-such-page"]:
        for host in (f"{EVIL}:{port}", EVIL, f"127.0.0.1.{EVIL}:{port}", f"localhost.{EVIL}", ""):
            answer = as_host(base, "GET", path, host)
            assert refused(answer), (path, host, answer.status_code)
    answer = httpx.get(f"{base}/catalog", headers={"Host": f"{EVIL}:{port}"})
    assert "http://127.0.0.1:" in answer.text and "--allow-host" in answer.text  # says what to do


def test_loopback_hosts_and_the_allowed_name_still_work(served, studio_home):
    from modelatlas.store.keys import list_keys

    base, port, _ = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST.:{port}", f"[::1]:{port}", ALSO):
        page = as_host(base, "GET", "/deployments", host)
        assert page.status_code == 200 and "Deployments" in page.text, host
    made = as_host(base, "POST", "/deployments/keys", f"localhost:{port}", data={"name": "own"})
    assert made.status_code == 303  # post/redirect/get: the secret is on the page it leads to
    shown = as_host(base, "GET", made.headers["location"], f"localhost:{port}")
    assert shown.status_code == 200 and "ma-" in shown.text
    assert "own" in [k.name for k in list_keys()]
    # The CSRF check still holds for an allowed Host: the Origin must be that same address.
    foreign = httpx.post(
        f"{base}/deployments/keys",
        data={"name": "csrf"},
        headers={"Host": f"localhost:{port}", "Origin": f"http://{EVIL}"},
    )
    assert foreign.status_code == 403 and "csrf" not in [k.name for k in list_keys()]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("127.0.0.1:8765", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("LocalHost.:80", True),
        ("[::1]:8765", True),
        ("[::1]", True),
        ("::1", True),
        ("[::ffff:127.0.0.1]:1", True),
        ("studio.example:9", True),  # in allowed
        ("STUDIO.EXAMPLE.", True),
        ("evil.example:8765", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("127.0.0.1:80@evil.example", False),
        ("[::1]evil", False),
        ("localhost:http", False),
        ("", False),
        (None, False),
        ("10.0.0.1", False),
    ],
)
def test_host_allowed(header, expected):
    assert host_allowed(header, ["studio.example:8080"]) is expected


# --- the playground and file paths ----------------------------------------------------------


def test_the_playground_answers_alike_whether_a_path_exists_or_not(served, tmp_path, smollm2_path):
    """Before: an existing path gave "X is neither a .gguf file nor ...", a missing one "No model
    file or folder at X", and a real GGUF file was loaded and answered."""
    base, _, _ = served
    (tmp_path / "real.gguf").write_bytes(b"GGUF")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "config.json").write_text("{}")
    pairs = [
        (str(tmp_path / "real.gguf"), str(tmp_path / "fake.gguf")),
        (str(tmp_path / "folder"), str(tmp_path / "nofold")),
        ("/etc/passwd", "/etc/passwq"),
        ("~/.bashrc", "~/.bashrq"),
        ("src/modelatlas", "src/modelatlaz"),  # relative to the studio's folder, no telltale spelling
        (smollm2_path, smollm2_path[:-5] + "x.gguf"),
    ]
    for there, absent in pairs:
        answers = []
        for path in (there, absent):
            body = {"models": [path], "prompt": "hi", "max_tokens": 2}
            stream = httpx.post(f"{base}/api/playground/stream", json=body, timeout=60)
            pair = {"prompt": "hi", "model_a": path, "model_b": path + "-b"}
            battle = httpx.post(f"{base}/api/arena/battle", json=pair, timeout=60)
            page = httpx.get(f"{base}/playground", params={"models": path}, timeout=60)
            problems = re.findall(r'role="alert"[^>]*>(.*?)</', page.text, re.S)
            answers.append(
                [(r.status_code, r.headers["content-type"], same(r.text, path)) for r in (stream, battle)]
                + [(page.status_code, [same(p, path) for p in problems])]
            )
        assert answers[0] == answers[1], (there, absent, answers)
        stream_status, _, stream_text = answers[0][0]
        assert stream_status in (400, 404) and "error" in stream_text, (there, answers[0])


def same(text: str, path: str) -> str:
    """``text`` with the path asked about (and the arena's second one) written as PATH; the
    studio's message quotes at most 80 characters of it, so a long temporary path is cut."""
    spellings = {cut for whole in (path + "-b", path) for cut in (whole, whole[:80])}
    for spelling in sorted(spellings, key=len, reverse=True):  # the longest first
        for form in (spelling, spelling.replace("/", "\\/")):  # as JSON may escape it
            text = text.replace(form, "PATH")
    return text


def test_a_path_is_refused_with_a_message_that_says_what_to_do(served):
    base, _, _ = served
    body = {"models": ["/models/mine.gguf"], "prompt": "hi"}
    answer = httpx.post(f"{base}/api/playground/stream", json=body, timeout=30)
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert "model ids, not file paths" in message and "modelatlas models add" in message


def test_a_studio_on_every_address_accepts_ip_hosts_and_its_names_only():
    """On 0.0.0.0 (with --allow-remote) a browser may use any of the machine's addresses; an IP
    address as the Host cannot come from DNS rebinding, a foreign name can (in-process app)."""
    import socket

    from starlette.testclient import TestClient

    from modelatlas.cli.studio import allowed_hosts
    from modelatlas.studio import create_app

    names = allowed_hosts("0.0.0.0", ["studio.example"])
    assert names == [socket.gethostname(), "studio.example"]
    assert allowed_hosts("192.168.1.5", []) == ["192.168.1.5"]
    with TestClient(create_app(names, any_address=True)) as client:
        for host in ("192.168.1.5:8765", "[fe80::1]:8765", "studio.example", socket.gethostname()):
            assert client.get("/favicon.ico", headers={"Host": host}).status_code == 200, host
        assert refused(client.get("/favicon.ico", headers={"Host": f"{EVIL}:8765"}))
    with TestClient(create_app(["192.168.1.5"])) as client:
        assert client.get("/favicon.ico", headers={"Host": "192.168.1.5:8765"}).status_code == 200
        assert refused(client.get("/favicon.ico", headers={"Host": "192.168.1.6:8765"}))
