"""GGUF vision through llama.cpp's multimodal projector: the bundled SmolLM2 with a tiny random
LLaVA-style mmproj file beside it (tests.tiny_vision.build_tiny_mmproj), loaded by libmtmd."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from modelatlas.backends.declared import facts
from modelatlas.catalog.discover import scan
from modelatlas.catalog.records import ModelRecord
from modelatlas.catalog.resolve import record_for_path, resolve
from modelatlas.errors import InvalidRequestError, ModelFileError
from modelatlas.loading import load_model
from modelatlas.parts import ImagePart, TextPart
from modelatlas.types import GenerationParams, Message
from tests.conftest import needs, run
from tests.tiny_vision import IMAGE_TOKENS, build_tiny_mmproj

pytestmark = [needs("llama_cpp"), needs("gguf"), needs("PIL")]

GREEDY = GenerationParams(max_tokens=2, temperature=0, seed=0)
QUESTION = "Describe the picture."


def png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(out, "PNG")
    return out.getvalue()


def chat(*images: ImagePart) -> list[Message]:
    return [Message.user([*images, TextPart(text=QUESTION)])]


def picture(color: tuple[int, int, int]) -> ImagePart:
    return ImagePart(data=png(color), media_type="image/png")


@pytest.fixture(scope="module")
def vision_gguf(tmp_path_factory, smollm2_path) -> str:
    """A folder holding SmolLM2 (a hard link, else a copy) and mmproj-tiny.gguf beside it."""
    folder = tmp_path_factory.mktemp("gguf-vision")
    model = folder / "smollm2-vision.gguf"
    try:
        os.link(smollm2_path, model)
    except OSError:  # another file system
        shutil.copyfile(smollm2_path, model)
    build_tiny_mmproj(folder / "mmproj-tiny.gguf")
    return str(model)


def test_a_projector_beside_the_file_makes_the_model_take_images(vision_gguf, smollm2_path):
    (found,) = scan([os.path.dirname(vision_gguf)])  # the mmproj file is not a model of its own
    assert found.backend == "llamacpp" and found.location == vision_gguf
    assert found.modalities.input == ["text", "image"] and "multimodal" in found.tasks
    assert facts(found).accepts == {"text", "image"}
    assert facts(record_for_path(Path(vision_gguf))).accepts == {"text", "image"}
    assert facts(resolve("local/smollm2-135m-instruct")).accepts == {"text"}  # nothing beside it
    named = ModelRecord(id="my/v", backend="llamacpp", location=smollm2_path, options={"mmproj": "/x.gguf"})
    assert facts(named).accepts == {"text", "image"}


def test_a_missing_projector_or_an_image_url_is_refused_with_a_clear_error(smollm2_path):
    named = ModelRecord(
        id="my/v", backend="llamacpp", location=smollm2_path, options={"mmproj": "/no/x.gguf"}
    )
    model = load_model(named)
    with pytest.raises(ModelFileError, match=r"/no/x\.gguf does not exist"):
        run(model.generate(chat(picture((1, 2, 3))), GREEDY))
    with pytest.raises(InvalidRequestError, match="never fetches") as caught:
        run(model.generate(chat(ImagePart(url="https://example.com/a.png")), GREEDY))
    assert caught.value.param == "messages[0]"
    run(model.aclose())


def test_images_reach_the_model_through_the_projector(vision_gguf):
    record = ModelRecord(id="my/v", backend="llamacpp", location=vision_gguf, options={"n_ctx": 512})
    model = load_model(record)
    red = run(model.generate(chat(picture((255, 0, 0))), GREEDY))
    blue = run(model.generate(chat(picture((0, 0, 255))), GREEDY))
    assert red.text and blue.text and red.text != blue.text  # only the picture differs
    # llama.cpp's prompt count: the same chat's text tokens (the file's template, no picture)
    # plus libmtmd's 16 image positions.
    engine = model.backend.engine
    text_tokens = engine.submit(engine.chat_tokens, [{"role": "user", "content": QUESTION}]).result()
    assert red.usage.input_tokens == len(text_tokens) + IMAGE_TOKENS
    assert red.usage.output_tokens == 2 and red.finish_reason == "length"
    run(model.aclose())
