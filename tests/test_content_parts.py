"""Messages carry content parts (issue 12 item 1): typed parts, tool calls, hashes and cache keys
over the parts' bytes, OpenAI's wire shapes, and the Model's refusal of a part a backend cannot take."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from modelatlas.backends.base import as_messages
from modelatlas.backends.cache import StoreCache, cache_key
from modelatlas.backends.echo import EchoBackend, EchoOptions
from modelatlas.backends.model import Model
from modelatlas.errors import DatasetError, InvalidRequestError
from modelatlas.evals.datasets import content_hash, load_dataset
from modelatlas.evals.types import Item
from modelatlas.loading import load_model
from modelatlas.records import ModelRecord
from modelatlas.types import (
    AudioPart,
    GenerationParams,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    prompt_kinds,
)
from tests.conftest import run
from tests.test_backend_openai import fake_server

PNG = b"\x89PNG\r\n\x1a\n\x00\x00fake image bytes\xff"
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt fake sound"


def picture(data: bytes = PNG) -> Message:
    return Message.user([TextPart(text="What is in "), ImagePart(data=data, media_type="image/png")])


# -- the parts ---------------------------------------------------------------------------------


def test_plain_string_messages_are_as_before():
    message = Message.user("hi")
    assert message.content == "hi" and message.text == "hi"
    assert message.model_dump() == {"role": "user", "content": "hi"}
    assert message.model_dump(mode="json") == {"role": "user", "content": "hi"}
    assert message.parts == [TextPart(text="hi")] and message.kinds == {"text"}
    assert hash(message) == hash(Message.user("hi"))  # still a hashable frozen value


def test_parts_round_trip_through_json_with_base64_bytes():
    message = Message.user(
        [
            TextPart(text="Compare "),
            ImagePart(data=PNG, media_type="image/png"),
            TextPart(text=" with "),
            ImagePart(url="https://example.com/cat.png"),
            AudioPart(data=WAV, format="wav"),
        ]
    )
    dumped = message.model_dump(mode="json")
    assert dumped["content"][1]["data"] == base64.b64encode(PNG).decode()
    assert json.loads(json.dumps(dumped)) == dumped
    assert Message.model_validate(dumped) == message
    assert Message.model_validate_json(message.model_dump_json()) == message
    assert message.model_dump()["content"][1]["data"] == PNG  # Python keeps bytes
    assert message.text == "Compare  with "
    assert message.kinds == {"text", "image", "audio"}
    assert prompt_kinds([Message.system("s"), message]) == {"text", "image", "audio"}
    assert prompt_kinds("plain") == {"text"}


def test_a_part_has_exactly_one_source():
    with pytest.raises(ValidationError, match="exactly one of data, path or url"):
        ImagePart(data=PNG, media_type="image/png", url="https://example.com/x.png")
    with pytest.raises(ValidationError, match="exactly one of data, path or url"):
        ImagePart()
    with pytest.raises(ValidationError, match="media_type"):
        ImagePart(data=PNG)
    with pytest.raises(ValidationError, match="exactly one of data or path"):
        AudioPart(data=WAV, format="wav", path="a.wav")
    with pytest.raises(ValidationError, match="format"):
        AudioPart(data=WAV)
    with pytest.raises(ValidationError, match="base64"):
        Message.model_validate(
            {"role": "user", "content": [{"type": "audio", "data": "no!", "format": "wav"}]}
        )
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        Message.model_validate({"role": "user", "content": [{"type": "video", "path": "a.mp4"}]})


def test_data_urls_become_bytes_and_other_urls_stay_urls():
    part = ImagePart.from_url("data:image/jpeg;base64," + base64.b64encode(PNG).decode())
    assert part.data == PNG and part.media_type == "image/jpeg" and part.url is None
    assert ImagePart.from_url("https://example.com/a.png").url == "https://example.com/a.png"
    with pytest.raises(ValueError, match="data URL"):
        ImagePart.from_url("data:image/png,raw")


def test_path_parts_take_their_type_from_the_suffix(tmp_path):
    assert ImagePart(path=tmp_path / "a.jpg").media() == "image/jpeg"
    assert AudioPart(path=tmp_path / "a.MP3").audio_format() == "mp3"
    with pytest.raises(InvalidRequestError, match="Cannot read the image file"):
        ImagePart(path=tmp_path / "missing.png").read()


def test_tool_calls_and_results_belong_to_their_roles():
    call = ToolCall(id="call_1", name="weather", arguments='{"city": "Paris"}')
    asked = Message.assistant("", [call])
    answered = Message.tool("call_1", '{"celsius": 21}')
    assert asked.model_dump(mode="json")["tool_calls"] == [call.model_dump()]
    assert answered.model_dump() == {"role": "tool", "content": '{"celsius": 21}', "tool_call_id": "call_1"}
    assert Message.model_validate(asked.model_dump(mode="json")) == asked
    with pytest.raises(ValidationError, match="tool_calls belong on an assistant message"):
        Message(role="user", content="x", tool_calls=(call,))
    with pytest.raises(ValidationError, match="tool_call_id belongs on a tool message"):
        Message(role="assistant", content="x", tool_call_id="call_1")


# -- hashes and cache keys ---------------------------------------------------------------------

# Computed by the code before parts existed (the commit before issue 12 item 1): existing
# caches must keep hitting and dataset hashes must not move.
TEXT_PROMPT = [
    Message.system("Be brief."),
    Message.user("What is 2+2? é"),
    Message.assistant("4"),
    Message(role="tool", content="x"),
]
TEXT_KEY = "117f421ccb1cefe479eea4a5537f63745411423b8c00fb2a91a140cd33854162"
STRING_KEY = "a8bf9c98aa975fdfeda2edc36a96244e695fd8d3820ead0e98c69ee5f6caed8e"
DATASET_HASH = "3f03baeb3297f42826f91540a98c1412e10732cacb70302e30d247ab004e1add"


def test_text_prompts_keep_their_cache_keys():
    assert cache_key("ident-1", TEXT_PROMPT, GenerationParams()) == TEXT_KEY
    params = GenerationParams(max_tokens=8, stop=("\n",))
    assert cache_key("ident-1", "Once upon a time", params, kind="stream") == STRING_KEY


def test_text_datasets_keep_their_hash():
    items = [
        Item(
            id="1",
            messages=[Message.system("Be brief."), Message.user("Capital of France?")],
            reference=["Paris"],
        ),
        Item(id="2", input="2+2", reference=["4"]),
    ]
    assert content_hash(items) == DATASET_HASH


def test_cache_keys_cover_the_parts_bytes(tmp_path):
    params = GenerationParams()
    key = cache_key("m", [picture()], params)
    assert key == cache_key("m", [picture()], params)
    assert key != cache_key("m", [picture(PNG + b"!")], params)
    # A path part counts by its file's bytes: the same name with new bytes is a new prompt,
    # and the same bytes under another name are the same one.
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    by_path = [Message.user([TextPart(text="What is in "), ImagePart(path=path)])]
    first = cache_key("m", by_path, params)
    assert first == key
    path.write_bytes(PNG + b"!")
    assert cache_key("m", by_path, params) != first
    audio = [Message.user([AudioPart(data=WAV, format="wav")])]
    assert cache_key("m", audio, params) != cache_key(
        "m", [Message.user([AudioPart(data=WAV, format="mp3")])], params
    )


def vision_dataset(folder, path: str):
    row = {"id": "1", "messages": [{"role": "user", "content": [{"type": "image", "path": path}]}]}
    row["reference"] = "a cat"
    data = folder / "vision.jsonl"
    data.write_text(json.dumps(row) + "\n")
    return data


def test_dataset_hashes_cover_the_parts_bytes(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    image = tmp_path / "images" / "cat.png"
    image.write_bytes(PNG)
    data = vision_dataset(tmp_path, "images/cat.png")
    monkeypatch.chdir(tmp_path / "images")  # a relative path is read from the dataset's folder
    first = load_dataset(data)
    message = first.items[0].messages[0]
    assert message.kinds == {"image"} and message.files() == [image]
    image.write_bytes(PNG + b"!")
    assert load_dataset(data).hash != first.hash


def test_a_dataset_naming_a_missing_file_fails_with_its_line(tmp_path):
    with pytest.raises(DatasetError, match=r"vision.jsonl:1: field messages\[0\] names the file .*gone.png"):
        load_dataset(vision_dataset(tmp_path, "gone.png"))


# -- OpenAI's shapes ----------------------------------------------------------------------------


def test_as_messages_keeps_text_a_string_and_sends_parts_in_openais_shape(tmp_path):
    path = tmp_path / "song.mp3"
    path.write_bytes(WAV)
    prompt = [
        Message.system([TextPart(text="Be "), TextPart(text="brief.")]),
        Message.user(
            [
                TextPart(text="Look:"),
                ImagePart(data=PNG, media_type="image/png"),
                ImagePart(url="https://example.com/cat.png"),
                AudioPart(path=path),
            ]
        ),
        Message.assistant("", [ToolCall(id="c1", name="weather", arguments='{"city": "Paris"}')]),
        Message.tool("c1", "21 degrees"),
    ]
    system, user, assistant, tool = as_messages(prompt)
    assert system == {"role": "system", "content": "Be brief."}
    assert user["content"] == [
        {"type": "text", "text": "Look:"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        },
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "mp3"}},
    ]
    assert assistant == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert tool == {"role": "tool", "content": "21 degrees", "tool_call_id": "c1"}
    assert as_messages([Message.user("hi")]) == [{"role": "user", "content": "hi"}]


def test_the_openai_backend_sends_images_audio_and_tool_calls(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    prompt = [
        Message.user(
            [TextPart(text="What is this?"), ImagePart(path=path), AudioPart(data=WAV, format="wav")]
        ),
        Message.assistant("Let me look.", [ToolCall(id="c1", name="zoom", arguments="{}")]),
        Message.tool("c1", "zoomed"),
    ]
    with fake_server() as (fake, url):
        model = load_model(ModelRecord(id="fake/vision", backend="openai", options={"base_url": url}))
        out = run(model.generate(prompt, max_tokens=8))
        run(model.aclose())
    assert out.text == "Hello there"
    sent = fake.requests[0].body["messages"]
    assert sent[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert sent[0]["content"][2]["input_audio"]["format"] == "wav"
    assert sent[1]["tool_calls"][0]["function"] == {"name": "zoom", "arguments": "{}"}
    assert sent[2] == {"role": "tool", "content": "zoomed", "tool_call_id": "c1"}


# -- the Model refuses what its backend cannot take ----------------------------------------------


def test_a_text_only_model_refuses_an_image_before_any_call():
    record = ModelRecord(id="test/echo", backend="echo")
    backend = EchoBackend(record.id, None, EchoOptions())
    calls = []
    model = Model(record, backend, on_call=calls.append, cache=StoreCache())
    assert backend.accepts == {"text"}
    with pytest.raises(InvalidRequestError) as caught:
        run(model.generate([Message.user("hi"), picture()]))
    error = caught.value
    assert "test/echo" in error.message and "It accepts: text" in error.message
    assert "image" in error.message and error.param == "messages[1]"
    with pytest.raises(InvalidRequestError, match="does not take audio"):
        model.stream([Message.user([AudioPart(data=WAV, format="wav")])])  # at the call, not at iteration
    assert backend.calls == 0 and calls == []
    # Text parts are text: a text model takes them.
    out = run(model.generate([Message.user([TextPart(text="one "), TextPart(text="two")])]))
    assert out.text == "one two" and backend.calls == 1
