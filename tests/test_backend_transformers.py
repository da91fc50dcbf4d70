"""The transformers backend with real models: the bundled SmolLM2 GGUF and all-MiniLM folder,
and tiny random T5 and BERT models saved to a temporary folder with tokenizers built offline."""

from __future__ import annotations

import asyncio
import math
import os

import pytest

from modelatlas.errors import ConfigError, ContextLengthExceededError, ModelFileError
from modelatlas.loading import load_model
from modelatlas.types import Completion, GenerationParams, Message
from tests.conftest import needs, run

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytestmark = [needs("torch"), needs("transformers"), pytest.mark.slow]

SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the quick brown fox jumps over the lazy dog",
    "hello world how are you today",
]


def backend(location, **options):
    from modelatlas.backends.hf import TransformersBackend

    return TransformersBackend("test/model", str(location), TransformersBackend.parse_options(options))


def word_tokenizer(specials: list[str], template: str, **named):
    """A word-level fast tokenizer trained in memory on SENTENCES (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    unk = named["unk_token"]
    raw = Tokenizer(models.WordLevel(unk_token=unk))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=specials))
    ids = [(t, raw.token_to_id(t)) for t in specials if t in template]
    raw.post_processor = processors.TemplateProcessing(single=template, special_tokens=ids)
    return PreTrainedTokenizerFast(tokenizer_object=raw, model_max_length=64, **named)


async def collect(stream):
    return [chunk async for chunk in stream]


# -- SmolLM2 (GGUF, dequantized by transformers) -------------------------------------------------


@pytest.fixture(scope="module")
def smol(smollm2_path):
    model = backend(smollm2_path)
    model.loaded()  # about 15 s on 2 cores: the GGUF file is read and dequantized
    return model


CHAT = [Message.user("What is the capital of France?")]


def test_gguf_chat_generate(smol):
    result = run(smol.generate(CHAT, GenerationParams(max_tokens=16)))
    assert isinstance(result, Completion)
    assert "Paris" in result.text
    assert result.usage.input_tokens > 5
    assert 0 < result.usage.output_tokens <= 16
    assert result.finish_reason in ("stop", "length")
    assert smol.context_length == 8192


def test_gguf_stream_matches_generate(smol):
    params = GenerationParams(max_tokens=12)
    chunks = run(collect(smol.stream(CHAT, params)))
    whole = run(smol.generate(CHAT, params))
    texts = [c.text for c in chunks[:-1]]
    assert len(texts) >= 2 and all(texts)
    assert "".join(texts) == whole.text
    assert chunks[-1].finish_reason == whole.finish_reason
    assert chunks[-1].usage == whole.usage


def test_gguf_max_tokens_and_stop(smol):
    short = run(smol.generate("The capital of France is", GenerationParams(max_tokens=3)))
    assert short.finish_reason == "length"
    assert short.usage.output_tokens == 3
    params = GenerationParams(max_tokens=16, stop=("Paris",))
    stopped = run(smol.generate(CHAT, params))
    assert "Paris" not in stopped.text and stopped.finish_reason == "stop"
    streamed = run(collect(smol.stream(CHAT, params)))
    assert "".join(c.text for c in streamed) == stopped.text
    assert streamed[-1].finish_reason == "stop"


def test_gguf_sampling_is_seeded(smol):
    params = GenerationParams(max_tokens=8, temperature=0.9, top_p=0.9, seed=7)
    first = run(smol.generate("Once upon a time", params))
    again = run(smol.generate("Once upon a time", params))
    assert first.text == again.text and first.text


def test_gguf_loglikelihood(smol):
    paris = run(smol.loglikelihood("The capital of France is", " Paris"))
    banana = run(smol.loglikelihood("The capital of France is", " banana"))
    assert paris.logprob > banana.logprob
    assert paris.logprob < 0 and paris.tokens >= 1
    assert paris.is_greedy and not banana.is_greedy


def test_gguf_count_tokens(smol):
    assert smol.count_tokens("") == 0
    assert smol.count_tokens("Hello world") == 2


def test_gguf_context_exceeded_before_generating(smol, smollm2_path):
    small = backend(smollm2_path, max_length=32)
    assert small.loaded() is smol.loaded()  # one loaded model, whatever the context override
    assert small.context_length == 32
    prompt = "word " * 100
    with pytest.raises(ContextLengthExceededError) as caught:
        run(small.generate(prompt, GenerationParams(max_tokens=4)))
    assert caught.value.context_length == 32 and caught.value.prompt_tokens > 32
    with pytest.raises(ContextLengthExceededError):
        run(collect(small.stream(prompt, GenerationParams(max_tokens=4))))
    with pytest.raises(ContextLengthExceededError):
        run(smol.generate("Hi", GenerationParams(max_tokens=9000)))


def test_gguf_concurrent_callers_do_not_interleave(smol):
    prompts = ["The capital of France is", "One, two, three,"]
    params = GenerationParams(max_tokens=5)
    alone = [run(smol.generate(p, params)).text for p in prompts]

    async def together():
        return await asyncio.gather(*(smol.generate(p, params) for p in prompts))

    assert [r.text for r in run(together())] == alone


# -- a tiny random T5 (sequence to sequence) ------------------------------------------------------


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("t5")
    tokenizer = word_tokenizer(
        ["<pad>", "</s>", "<unk>"], "$A </s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_t5_is_detected_and_generates(t5_folder):
    from modelatlas.backends.hf_load import detect_kind

    assert detect_kind(t5_folder) == "seq2seq"
    t5 = backend(t5_folder)
    result = run(t5.generate("the cat sat", GenerationParams(max_tokens=6)))
    assert isinstance(result, Completion) and isinstance(result.text, str)
    assert result.usage.input_tokens == 4  # three words and </s>
    assert 1 <= result.usage.output_tokens <= 6
    expected = "length" if result.usage.output_tokens == 6 else "stop"
    assert result.finish_reason in (expected, "stop")
    chunks = run(collect(t5.stream([Message.user("the cat sat")], GenerationParams(max_tokens=6))))
    assert chunks[-1].usage == result.usage and chunks[-1].finish_reason == result.finish_reason
    assert "".join(c.text for c in chunks) == result.text


def test_t5_loglikelihood_and_context(t5_folder):
    t5 = backend(t5_folder)
    scored = run(t5.loglikelihood("the cat", "sat on"))
    assert scored.tokens == 2 and scored.logprob < 0
    with pytest.raises(ContextLengthExceededError):
        run(t5.generate("the cat " * 40, GenerationParams(max_tokens=2)))


# -- a tiny random BERT (mean pooled embeddings) --------------------------------------------------


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("bert")
    tokenizer = word_tokenizer(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
        "[CLS] $A [SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_bert_embeddings_are_mean_pooled_and_normalized(bert_folder):
    from modelatlas.backends.hf_load import detect_kind

    assert detect_kind(bert_folder) == "embedding"
    bert = backend(bert_folder)
    texts = ["the cat sat", "a dog ran in the park"]
    first = run(bert.embed(texts))
    again = run(bert.embed(texts))
    assert len(first.vectors) == 2 and all(len(v) == 32 for v in first.vectors)
    assert all(math.isclose(math.hypot(*v), 1.0, rel_tol=1e-4) for v in first.vectors)
    assert first.vectors == again.vectors
    assert first.usage.input_tokens == (3 + 2) + (6 + 2)
    assert bert.count_tokens("the cat sat") == 3
    with pytest.raises(ConfigError, match="only makes embeddings"):
        run(bert.generate("the cat", GenerationParams(max_tokens=2)))


def test_bert_single_text_matches_batch(bert_folder):
    bert = backend(bert_folder, normalize=False)
    batch = run(bert.embed(["the cat sat", "a dog ran in the park"])).vectors
    alone = run(bert.embed(["the cat sat"])).vectors[0]
    assert all(math.isclose(a, b, abs_tol=1e-5) for a, b in zip(alone, batch[0], strict=True))
    assert not math.isclose(math.hypot(*alone), 1.0, rel_tol=1e-3)


def test_one_load_shared_by_concurrent_callers(bert_folder):
    from concurrent.futures import ThreadPoolExecutor

    from modelatlas.backends.hf_load import load

    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: load(str(bert_folder)), range(4)))
    assert all(f is found[0] for f in found)
    assert backend(bert_folder).loaded() is found[0]


def test_embed_on_a_generator_is_a_config_error(t5_folder):
    with pytest.raises(ConfigError, match="does not make embeddings"):
        run(backend(t5_folder).embed(["the cat"]))


# -- all-MiniLM-L6-v2 (bundled sentence-transformers folder) --------------------------------------


@needs("sentence_transformers")
def test_minilm_through_load_model(minilm_path):
    model = load_model("local/all-minilm-l6-v2")
    assert model.record.backend == "transformers" and model.record.options == {"task": "embedding"}
    texts = [
        "A man is playing a guitar.",
        "Someone plays the guitar.",
        "The stock market fell sharply today.",
    ]
    result = run(model.embed(texts))
    anchor, paraphrase, unrelated = result.vectors
    assert len(anchor) == 384
    assert cosine(anchor, paraphrase) > cosine(anchor, unrelated) + 0.2
    assert math.isclose(math.hypot(*anchor), 1.0, rel_tol=1e-4)
    assert result.usage.input_tokens > len(texts)
    assert model.context_length == 256


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


# -- bad files and options --------------------------------------------------------------------------


def test_garbage_gguf_is_a_model_file_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        run(backend(bad).generate("hi", GenerationParams(max_tokens=2)))


def test_truncated_gguf_is_a_model_file_error(tmp_path, smollm2_path):
    cut = tmp_path / "cut.gguf"
    with open(smollm2_path, "rb") as source:
        cut.write_bytes(source.read(200_000))
    with pytest.raises(ModelFileError, match="Could not load"):
        run(backend(cut).generate("hi", GenerationParams(max_tokens=2)))


def test_broken_folders_are_model_file_errors(tmp_path, bert_folder):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"config\.json"):
        run(backend(broken).generate("hi", GenerationParams(max_tokens=2)))
    bad_weights = tmp_path / "bad-weights"
    bad_weights.mkdir()
    for file in bert_folder.iterdir():
        (bad_weights / file.name).write_bytes(file.read_bytes())
    (bad_weights / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelFileError, match="Could not load"):
        run(backend(bad_weights).embed(["the cat"]))
    with pytest.raises(ModelFileError, match="No model"):
        run(backend(tmp_path / "missing").embed(["the cat"]))


@pytest.mark.parametrize("options", [{"task": "painting"}, {"dtype": "float8"}, {"bogus": 1}, {"threads": 0}])
def test_bad_options_fail_before_loading(options):
    from modelatlas.backends.hf import TransformersBackend

    with pytest.raises(ConfigError, match="Bad options"):
        TransformersBackend.parse_options(options)


def test_import_is_cheap():
    import subprocess
    import sys

    code = "import sys, modelatlas.backends.hf; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
