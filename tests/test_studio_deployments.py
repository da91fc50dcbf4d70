"""Deployments page in a real browser: a running `modelatlas serve` is listed, a key made in the
studio works against it, revoking it in the studio locks it out, and usage shows as charts."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.servers import free_port, python_server

MODEL = "test/echo"


@pytest.fixture
def server(home, tmp_path):
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord, Price

    user.add(ModelRecord(id=MODEL, backend="echo", mode="chat", price=Price(input=100.0, output=200.0)))
    port = free_port()
    env = dict(os.environ, MODELATLAS_HOME=str(home))
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--model", MODEL]
    with python_server(args, port, ready_path="/health", log_path=str(tmp_path / "serve.log"), env=env):
        yield f"http://127.0.0.1:{port}"


def ask(server: str, secret: str) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello there studio"}]}
    return httpx.post(
        f"{server}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )


def test_create_use_and_revoke_a_key_from_the_studio(server, page):
    page.goto("/deployments")
    servers = page.locator("#servers")
    assert MODEL in servers.inner_text() and "healthy" in servers.inner_text()

    page.get_by_label("Name").fill("web-app")
    page.get_by_label("Requests per minute").fill("100")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("ma-")
    row = page.locator('tr[data-key="web-app"]')
    assert "active" in row.inner_text() and "100" in row.inner_text()

    assert "created=" in page.url  # post/redirect/get: the secret came on a GET after a 303
    page.reload()  # a reload asks again for that page, and neither re-posts nor shows the secret
    assert page.locator("#new-secret").count() == 0 and secret not in page.content()
    assert "was shown once" in page.locator("#keys").inner_text()
    assert page.locator('tr[data-key="web-app"]').count() == 1

    assert ask(server, secret).status_code == 200
    time.sleep(0.6)  # the server stores usage records within a quarter of a second
    page.goto("/deployments")
    assert page.locator("#new-secret").count() == 0  # shown once only
    assert secret not in page.content()
    page.locator("#usage-keys .plot-container, #usage-keys svg").first.wait_for()
    assert MODEL in page.locator("#usage-by-model").inner_text()
    row = page.locator('tr[data-key="web-app"]')
    assert row.locator("td").nth(7).inner_text().strip() == "1"  # one request metered

    asked: list[str] = []

    def answer_dialog(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer_dialog(d, accept=False))
    row.get_by_role("button", name="Revoke key web-app").click()
    assert asked and "cannot be undone" in asked[0]
    assert "active" in page.locator('tr[data-key="web-app"]').inner_text()  # said no: nothing happened
    page.once("dialog", lambda d: answer_dialog(d, accept=True))
    row.get_by_role("button", name="Revoke key web-app").click()
    page.wait_for_url("**/deployments?revoked=web-app*")
    assert "revoked" in page.locator('tr[data-key="web-app"]').inner_text()
    time.sleep(1.1)  # a verified key is remembered for one second
    answer = ask(server, secret)
    assert answer.status_code == 401 and "revoked" in answer.json()["error"]["message"]


def test_a_bad_key_form_says_what_is_wrong(page):
    page.goto("/deployments")
    page.get_by_label("Name").fill("limited")
    page.get_by_label("Tokens per minute").fill("lots")
    page.get_by_role("button", name="Create key").click()
    alert = page.get_by_role("alert")
    assert "tpm must be a whole number" in alert.inner_text()
    assert page.get_by_label("Name").input_value() == "limited"  # the form keeps what was typed
    assert page.locator('tr[data-key="limited"]').count() == 0


def test_a_post_from_another_site_is_refused(studio):
    """Another site's page cannot create or revoke keys through the user's browser (CSRF)."""
    from modelatlas.store.keys import list_keys

    form = {"name": "planted"}
    foreign = httpx.post(f"{studio}/deployments/keys", data=form, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert list_keys() == []
    own = httpx.post(f"{studio}/deployments/keys", data=form, headers={"Origin": studio})
    assert own.status_code == 303 and [k.name for k in list_keys()] == ["planted"]
