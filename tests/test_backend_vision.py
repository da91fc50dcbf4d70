"""Local vision-language models: the transformers backend on the tiny random LLaVA
(tests.tiny_vision), its discovery and `models add --path`, and text-only models refusing images."""

from __future__ import annotations

import io
import os

import pytest
from typer.testing import CliRunner

from modelatlas.backends.declared import facts
from modelatlas.catalog.discover import scan
from modelatlas.catalog.records import ModelRecord
from modelatlas.catalog.resolve import resolve
from modelatlas.cli.main import app
from modelatlas.errors import ContextLengthExceededError, InvalidRequestError
from modelatlas.loading import load_model
from modelatlas.parts import ImagePart, TextPart
from modelatlas.types import GenerationParams, Message
from tests.conftest import needs, run
from tests.tiny_vision import IMAGE_TOKENS

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytestmark = [needs("torch"), needs("transformers"), needs("PIL")]

GREEDY = GenerationParams(max_tokens=8, temperature=0, seed=0)


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 40)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def chat(*images: ImagePart, text: str = "describe this picture.") -> list[Message]:
    return [Message.user([*images, TextPart(text=text)])]


def picture(color: tuple[int, int, int]) -> ImagePart:
    return ImagePart(data=png(color), media_type="image/png")


@pytest.fixture(scope="module")
def vlm(tiny_vlm_path):
    from modelatlas.backends.hf import TransformersBackend

    backend = TransformersBackend("test/vlm", tiny_vlm_path, TransformersBackend.parse_options({}))
    backend.loaded()
    return backend


def test_images_reach_the_model(vlm):
    red = run(vlm.generate(chat(picture((255, 0, 0))), GREEDY))
    blue = run(vlm.generate(chat(picture((0, 0, 255))), GREEDY))
    again = run(vlm.generate(chat(picture((0, 0, 255))), GREEDY))
    assert red.text and blue.text
    assert red.text != blue.text  # same prompt and seed: only the picture differs
    assert blue.text == again.text
    assert red.usage.output_tokens == 8 and red.finish_reason == "length"


def test_usage_counts_the_image_tokens_as_the_processor_expands_them(vlm, tiny_vlm_path, tmp_path):
    from transformers import AutoProcessor

    file = tmp_path / "green.png"
    file.write_bytes(png((0, 200, 0), (64, 48)))
    prompt = chat(picture((255, 0, 0)), ImagePart(path=file), text="what colour is the cat?")
    result = run(vlm.generate(prompt, GREEDY))
    # The reference: transformers' own processor on the same chat and pictures.
    processor = AutoProcessor.from_pretrained(tiny_vlm_path)
    entries = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "what colour is the cat?"}]
    text = processor.apply_chat_template([{"role": "user", "content": entries}], add_generation_prompt=True)
    from PIL import Image

    images = [Image.open(io.BytesIO(png((255, 0, 0)))), Image.open(file)]
    expanded = processor(text=[text], images=images, return_tensors="pt")["input_ids"]
    assert result.usage.input_tokens == expanded.shape[1]
    unexpanded = len(processor.tokenizer(text)["input_ids"])  # "<image>" is one token before expansion
    assert result.usage.input_tokens == unexpanded - 2 + 2 * IMAGE_TOKENS


def test_stream_matches_generate(vlm):
    prompt = chat(picture((0, 0, 255)))
    chunks = run(_collect(vlm.stream(prompt, GREEDY)))
    whole = run(vlm.generate(prompt, GREEDY))
    assert len(chunks) >= 3 and "".join(c.text for c in chunks) == whole.text
    assert chunks[-1].usage == whole.usage and chunks[-1].finish_reason == whole.finish_reason


def test_a_plain_string_and_a_text_only_chat_run_without_images(vlm):
    assert run(vlm.generate("hello world", GREEDY)).usage.input_tokens < IMAGE_TOKENS
    text_chat = run(vlm.generate([Message.user("hello")], GREEDY))
    assert text_chat.text and text_chat.usage.input_tokens < IMAGE_TOKENS


def test_url_images_and_unreadable_images_are_refused(vlm, tmp_path):
    with pytest.raises(InvalidRequestError, match="never fetches") as caught:
        run(vlm.generate(chat(ImagePart(url="https://example.com/cat.png")), GREEDY))
    assert caught.value.param == "messages[0]"
    broken = ImagePart(data=b"not a picture", media_type="image/png")
    with pytest.raises(InvalidRequestError, match="cannot read the image/png bytes as an image"):
        run(vlm.generate(chat(broken), GREEDY))
    with pytest.raises(InvalidRequestError, match="Cannot read the image file"):
        run(vlm.generate(chat(ImagePart(path=tmp_path / "missing.png")), GREEDY))


def test_images_count_against_the_context(tiny_vlm_path, vlm):
    from modelatlas.backends.hf import TransformersBackend

    options = TransformersBackend.parse_options({"max_length": 24})
    small = TransformersBackend("test/vlm", tiny_vlm_path, options)
    assert run(small.generate("hi", GenerationParams(max_tokens=4))).usage.input_tokens < 20
    with pytest.raises(ContextLengthExceededError) as caught:
        run(small.generate(chat(picture((9, 9, 9))), GenerationParams(max_tokens=4)))
    assert caught.value.prompt_tokens > IMAGE_TOKENS
    with pytest.raises(ContextLengthExceededError):  # the answer must fit beside the prompt
        run(small.generate("hi", GenerationParams(max_tokens=30)))


def test_discovery_and_models_add_record_a_vision_folder(tiny_vlm_path, vlm):
    (found,) = scan([tiny_vlm_path])
    assert found.backend == "transformers" and found.mode == "chat"
    assert found.modalities.input == ["text", "image"] and "multimodal" in found.tasks
    assert found.architecture == "decoder-only" and found.context_length == 512
    assert facts(found).accepts == {"text", "image"}
    added = CliRunner().invoke(app, ["models", "add", "my/vlm", "--path", tiny_vlm_path])
    assert added.exit_code == 0, added.output
    record = resolve("my/vlm")
    assert record.modalities.input == ["text", "image"] and facts(record).accepts == {"text", "image"}
    model = load_model("my/vlm")
    answer = run(model.generate(chat(picture((255, 0, 0))), GREEDY))
    assert answer.text == run(vlm.generate(chat(picture((255, 0, 0))), GREEDY)).text
    run(model.aclose())


def test_text_only_models_refuse_an_image_before_any_call(smollm2_path):
    # SmolLM2 by llama.cpp (bundled) and by transformers: neither is loaded, the check comes first.
    for model in (
        load_model("local/smollm2-135m-instruct"),
        load_model(ModelRecord(id="my/smol", backend="transformers", location=smollm2_path)),
    ):
        assert facts(model.record).accepts == {"text"}
        with pytest.raises(InvalidRequestError, match="does not take images") as caught:
            run(model.generate(chat(picture((255, 0, 0))), GREEDY))
        assert "It accepts: text" in caught.value.message
        run(model.aclose())


async def _collect(stream):
    return [chunk async for chunk in stream]


def test_which_configs_are_vision_language_models():
    from modelatlas.backends.hf_load import is_vision_config

    assert is_vision_config({"architectures": ["LlavaForConditionalGeneration"], "vision_config": {}})
    assert is_vision_config({"architectures": ["Qwen2VLForConditionalGeneration"]})
    assert is_vision_config({"architectures": ["Idefics3ForConditionalGeneration"], "vision_config": {}})
    # Contrastive encoders (CLIP, SigLIP) nest a vision_config too, but write no text.
    assert not is_vision_config({"architectures": ["CLIPModel"], "vision_config": {}, "text_config": {}})
    assert not is_vision_config({"architectures": ["LlamaForCausalLM"]})
