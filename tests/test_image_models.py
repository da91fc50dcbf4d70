"""Hosted image models in the catalog (catalog/image_models.py and the snapshot's image-only
models), `catalog search --modality image` on hosted vision models, and the images.generate
request the openai backend builds for each family (backends/openai_images.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from modelatlas.backends import openai_images
from modelatlas.backends.declared import facts
from modelatlas.catalog.catalog import forget, load_catalog
from modelatlas.catalog.resolve import resolve
from modelatlas.cli.main import app
from modelatlas.errors import InvalidRequestError
from modelatlas.images import ImageParams


def _search(*args: str) -> list[dict]:
    forget()  # runnable follows the environment, which a CLI process reads when it starts
    result = CliRunner().invoke(app, ["catalog", "search", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_openai_image_models_are_priced_per_image_in_image_generation_mode(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    forget()
    expected = {"openai/gpt-image-1": 0.042, "openai/gpt-image-1-mini": 0.011, "openai/dall-e-3": 0.040}
    expected |= {"openai/dall-e-2": 0.020, "azure/gpt-image-1": 0.042, "azure/dall-e-3": 0.040}
    for model_id, per_image in expected.items():
        record = resolve(model_id)
        assert record.mode == "image_generation" and record.tasks == ["image-generation"]
        assert record.price.per_image == per_image and record.price.input == record.price.output == 0
        assert facts(record).capabilities == {"image_generation"} and facts(record).accepts == {"text"}
        assert record.runnable == model_id.startswith("openai/")  # Azure's key is not set
    # A chat model of the same backend claims no image generation, and images.generate's
    # models of other providers in models.dev are in image_generation mode too.
    assert not facts(resolve("openai/gpt-4o")).can("image_generation")
    assert resolve("poe/openai/dall-e-3").mode == "image_generation"
    assert resolve("google/gemini-2.5-flash-image").mode == "chat"  # text out as well


def test_image_search_lists_hosted_vision_models_as_runnable_with_their_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    vision = ["gpt-4o", "--modality", "image", "--provider", "openai", "--runnable"]
    found = {r["id"]: r for r in _search(*vision)}
    assert "openai/gpt-4o" in found and "openai/gpt-4o-mini" in found
    assert all("image" in r["modalities"]["input"] for r in found.values())
    every = _search("--modality", "image", "--provider", "openai", "--limit", "500")
    assert not [r for r in every if "image" not in r["modalities"]["input"] + r["modalities"]["output"]]
    assert "openai/gpt-3.5-turbo" not in {r["id"] for r in every}  # text only: claims no images
    monkeypatch.delenv("OPENAI_API_KEY")
    assert not _search(*vision)


def test_the_catalog_counts_image_generators():
    records = load_catalog(scan=False).records
    generators = [r for r in records if r.mode == "image_generation"]
    assert len(generators) >= 83  # the snapshot's image-only models, and OpenAI's own
    assert all("image" in (r.modalities.output if r.modalities else []) for r in generators)


@pytest.mark.parametrize(
    ("model", "asks_b64", "calls"),
    [("gpt-image-1", False, [3]), ("gpt-image-1-mini", False, [3]), ("dall-e-3", True, [1, 1, 1])],
)
def test_images_generate_requests_per_family(model, asks_b64, calls):
    params = ImageParams(n=3, size="1024x1024", quality="low")
    assert openai_images.calls(model, params) == calls
    args = openai_images.request(model, "a boat", params, calls[0], compatible=False)
    assert args["model"] == model and args["size"] == "1024x1024" and args["quality"] == "low"
    assert ("response_format" in args) == asks_b64 and "extra_body" not in args  # OpenAI takes no seed


def test_local_knobs_go_to_compatible_servers_and_are_refused_by_openai():
    params = ImageParams(n=2, seed=9, steps=4, negative_prompt="blur")
    args = openai_images.request("my/sd", "a boat", params, 2, compatible=True)
    assert args["extra_body"] == {"seed": 9, "steps": 4, "negative_prompt": "blur"}
    assert args["response_format"] == "b64_json"
    with pytest.raises(InvalidRequestError, match="takes no negative_prompt, steps") as caught:
        openai_images.request("dall-e-2", "a boat", params, 2, compatible=False)
    assert caught.value.param == "negative_prompt"


def test_an_image_models_card_shows_its_price_per_image_and_the_images_endpoint():
    from modelatlas.catalog import cards

    record = resolve("openai/dall-e-3")
    card = cards.render(record, "md")
    assert "image-generation model from openai" in card and "$0.04 per image" in card
    assert "client.images.generate(" in card and "/v1/images/generations" in card
    assert "--out out.png" in card
    assert "pipeline_tag: text-to-image" in cards.render(record, "hf")


def test_an_azure_deployment_is_known_by_its_records_model_whatever_its_name():
    params = ImageParams(n=2)
    assert openai_images.calls("azure/dall-e-3 pictures", params) == [1, 1]
    gpt = openai_images.request(
        "pictures", "a boat", params, 2, compatible=False, family="azure/gpt-image-1 pictures"
    )
    assert gpt["model"] == "pictures" and "response_format" not in gpt
