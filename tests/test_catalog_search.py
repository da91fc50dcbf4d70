"""Faceted search and collections, on a hand-made catalog and on the shipped one."""

from __future__ import annotations

import pytest

from modelatlas.catalog.catalog import Catalog, load_catalog
from modelatlas.catalog.collections import collections, members
from modelatlas.catalog.records import Capabilities, Modalities, ModelRecord, Price
from modelatlas.catalog.search import Filters, search
from modelatlas.errors import ConfigError


def rec(model_id, **facts) -> ModelRecord:
    return ModelRecord(id=model_id, **facts)


@pytest.fixture
def small() -> Catalog:
    text = Modalities(input=["text"], output=["text"])
    return Catalog(
        [
            rec(
                "openai/gpt-4.1-mini",
                name="GPT-4.1 mini",
                tasks=["chat", "text-generation"],
                modalities=Modalities(input=["text", "image"], output=["text"]),
                open_weights=False,
                hosting="hosted",
                price=Price(input=0.4, output=1.6),
                context_length=1_047_576,
                release_date="2025-04-14",
                capabilities=Capabilities(tool_calling=True),
            ),
            rec(
                "azure/gpt-4o",
                name="GPT-4o",
                tasks=["chat", "multimodal"],
                modalities=text,
                open_weights=False,
                hosting="hosted",
                price=Price(input=2.5, output=10),
                context_length=128_000,
                release_date="2024-05-13",
            ),
            rec(
                "groq/llama-3.3-70b",
                name="Llama 3.3 70B",
                family="llama",
                tasks=["chat"],
                modalities=text,
                open_weights=True,
                license="llama3.3",
                hosting="hosted",
                price=Price(input=0.59, output=0.79),
                context_length=131_072,
                release_date="2024-12-06",
            ),
            rec(
                "mistral/codestral",
                name="Codestral",
                tasks=["code", "chat"],
                modalities=text,
                open_weights=True,
                license="mnpl",
                hosting="hosted",
                context_length=256_000,
                capabilities=Capabilities(reasoning=True),
            ),
            rec(
                "local/all-minilm-l6-v2",
                name="all-MiniLM-L6-v2",
                tasks=["embeddings"],
                modalities=Modalities(input=["text"], output=["embedding"]),
                architecture="encoder-only",
                open_weights=True,
                license="apache-2.0",
                hosting="local",
                runnable=True,
                fits=True,
                context_length=256,
            ),
            rec(
                "local/huge",
                name="Huge",
                tasks=["chat"],
                modalities=text,
                architecture="decoder-only",
                open_weights=True,
                hosting="local",
                runnable=True,
                fits=False,
            ),
        ],
        date="2026-07-02",
    )


def ids(found):
    return [r.id for r in found]


def test_every_filter_narrows(small):
    assert ids(search(small, Filters(task="embeddings"))) == ["local/all-minilm-l6-v2"]
    assert ids(search(small, Filters(modality="image"))) == ["openai/gpt-4.1-mini"]
    assert ids(search(small, Filters(arch="encoder-only"))) == ["local/all-minilm-l6-v2"]
    assert ids(search(small, Filters(license="apache"))) == ["local/all-minilm-l6-v2"]
    assert set(ids(search(small, Filters(open_weights=False)))) == {"openai/gpt-4.1-mini", "azure/gpt-4o"}
    assert len(search(small, Filters(open_weights=True))) == 4
    assert set(ids(search(small, Filters(hosting="local")))) == {"local/all-minilm-l6-v2", "local/huge"}
    assert ids(search(small, Filters(provider="groq"))) == ["groq/llama-3.3-70b"]
    # Unknown prices never pass a price limit; local models cost nothing per token.
    assert set(ids(search(small, Filters(max_price=0.6)))) == {
        "openai/gpt-4.1-mini",
        "groq/llama-3.3-70b",
        "local/all-minilm-l6-v2",
        "local/huge",
    }
    assert set(ids(search(small, Filters(min_context=200_000)))) == {
        "openai/gpt-4.1-mini",
        "mistral/codestral",
    }
    assert ids(search(small, Filters(fits=True))) == ["local/all-minilm-l6-v2"]
    assert set(ids(search(small, Filters(runnable=True)))) == {"local/all-minilm-l6-v2", "local/huge"}
    assert ids(search(small, Filters(task="chat", open_weights=True, hosting="hosted", max_price=1))) == [
        "groq/llama-3.3-70b"
    ]


def test_query_is_fuzzy(small):
    assert ids(search(small, Filters(query="llama")))[0] == "groq/llama-3.3-70b"
    assert ids(search(small, Filters(query="lama 70b"))) == ["groq/llama-3.3-70b"]
    assert ids(search(small, Filters(query="codestrl"))) == ["mistral/codestral"]
    assert ids(search(small, Filters(query="minilm")))[0] == "local/all-minilm-l6-v2"
    assert search(small, Filters(query="zzzz qqqq")) == []


def test_sorts(small):
    assert ids(search(small, Filters(), sort="price"))[:2] == ["local/all-minilm-l6-v2", "local/huge"]
    assert ids(search(small, Filters(), sort="context"))[0] == "openai/gpt-4.1-mini"
    assert ids(search(small, Filters(), sort="release"))[0] == "openai/gpt-4.1-mini"
    assert ids(search(small, Filters(), sort="name"))[0] == "local/all-minilm-l6-v2"
    assert len(search(small, Filters(), limit=2)) == 2


@pytest.mark.parametrize(
    ("filters", "sort", "listed"),
    [
        (Filters(task="chatbot"), "name", "text-generation"),
        (Filters(arch="transformer"), "name", "decoder-only"),
        (Filters(modality="smell"), "name", "embedding"),
        (Filters(), "popularity", "relevance"),
    ],
)
def test_unknown_facet_values_list_the_valid_ones(small, filters, sort, listed):
    with pytest.raises(ConfigError) as info:
        search(small, filters, sort=sort)
    assert "Valid values" in str(info.value) and listed in str(info.value)


def test_unknown_provider_gets_did_you_mean(small):
    with pytest.raises(ConfigError, match="Did you mean 'groq'"):
        search(small, Filters(provider="grok"))


def test_collections(small):
    counts = {c.name: n for c, n in collections(small)}
    assert counts["Azure OpenAI"] == 1 and counts["Open weights"] == 4
    assert ids(members(small, "Runs on this machine")) == ["local/all-minilm-l6-v2"]
    assert ids(members(small, "groq")) == ["groq/llama-3.3-70b"]
    assert ids(search(small, Filters(collection="Reasoning"))) == ["mistral/codestral"]
    with pytest.raises(ConfigError, match="Did you mean 'Open weights'"):
        members(small, "open weight")


def test_unknown_id_says_did_you_mean(small):
    from modelatlas.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match=r"openai/gpt-4\.1-mini"):
        small.get("openai/gpt-4.1-mni")


def test_the_shipped_catalog_merges_all_sources():
    catalog = load_catalog()
    assert len(catalog) >= 5000
    assert len(catalog.providers()) >= 140
    assert catalog.get("openai/gpt-4.1-mini").price.input > 0
    local = search(catalog, Filters(task="embeddings", hosting="local"), limit=None)
    assert "local/all-minilm-l6-v2" in ids(local)
    assert len(members(catalog, "Azure OpenAI")) > 20
    runs_here = ids(members(catalog, "Runs on this machine"))
    assert {"local/smollm2-135m-instruct", "local/gemma-3-270m", "local/all-minilm-l6-v2"} <= set(runs_here)


def test_hosted_models_become_runnable_when_their_key_is_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert load_catalog(refresh=True).get("openai/gpt-4.1-mini").runnable is False
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    assert load_catalog(refresh=True).get("openai/gpt-4.1-mini").runnable is True


def test_with_no_query_the_catalog_opens_on_what_runs_here_then_makers_then_the_newest():
    """A model that runs here first; then the makers' own listings before resellers; newest
    first among those (before, the default order was by name: resellers' ids starting with
    digits came first)."""
    catalog = Catalog(
        [
            rec("0-reseller/gpt-x", release_date="2026-01-01"),
            rec("openai/gpt-old", release_date="2024-01-01"),
            rec("openai/gpt-new", release_date="2026-02-01"),
            rec("local/tiny", runnable=True),
        ]
    )
    assert ids(search(catalog, Filters())) == [
        "local/tiny",
        "openai/gpt-new",
        "openai/gpt-old",
        "0-reseller/gpt-x",
    ]
