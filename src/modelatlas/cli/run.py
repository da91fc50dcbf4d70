"""`modelatlas run`: send one prompt to one model and stream the answer."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from modelatlas.cli.common import console, handle_errors, print_json
from modelatlas.errors import InvalidRequestError

ModelArg = Annotated[str, typer.Argument(help="Model id (see `modelatlas models list`) or a .gguf path.")]
PromptArg = Annotated[
    str,
    typer.Argument(
        help="The prompt; '-' reads it from standard input. For a speech model: an audio file "
        "(WAV, MP3, FLAC...), or '-' for its bytes on standard input."
    ),
]
System = Annotated[
    str | None, typer.Option("--system", help="System prompt (a speech model: text that precedes the audio).")
]
MaxTokens = Annotated[int, typer.Option("--max-tokens", min=1, help="Most tokens to generate.")]
Temperature = Annotated[float, typer.Option("--temperature", min=0.0, max=2.0)]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object at the end.")]
Language = Annotated[
    str | None,
    typer.Option("--language", help="Speech models: the audio's language ('en'); default: detected."),
]
WordTimestamps = Annotated[
    bool, typer.Option("--word-timestamps", help="Speech models: time each word (in --json).")
]
Out = Annotated[
    str | None,
    typer.Option("--out", help="Image models: the file to write (out.png; with --n, out-1.png...)."),
]
Count = Annotated[int | None, typer.Option("--n", min=1, max=10, help="Image models: how many pictures.")]
Size = Annotated[str | None, typer.Option("--size", help="Image models: WIDTHxHEIGHT, e.g. 512x512.")]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Image models: picture i uses seed + i (default: random).")
]
Steps = Annotated[int | None, typer.Option("--steps", min=1, max=1000, help="Image models: denoising steps.")]
Guidance = Annotated[
    float | None, typer.Option("--guidance", min=0.0, max=50.0, help="Image models: guidance scale.")
]
NegativePrompt = Annotated[
    str | None, typer.Option("--negative-prompt", help="Image models: what the picture should not show.")
]
Images = Annotated[
    list[str] | None,
    typer.Option(
        "--image",
        help="A picture sent with the prompt: a file, or an http(s) URL for hosted models; repeatable.",
    ),
]


@handle_errors
def run(
    model: ModelArg,
    prompt: PromptArg,
    system: System = None,
    max_tokens: MaxTokens = 256,
    temperature: Temperature = 0.0,
    json_out: JsonOut = False,
    language: Language = None,
    word_timestamps: WordTimestamps = False,
    out: Out = None,
    n: Count = None,
    size: Size = None,
    seed: Seed = None,
    steps: Steps = None,
    guidance: Guidance = None,
    negative_prompt: NegativePrompt = None,
    image: Images = None,
) -> None:
    """Send PROMPT to MODEL and stream the answer to the terminal; a speech model transcribes
    the audio file PROMPT and prints the transcript; an image model draws PROMPT into --out."""
    from modelatlas.cli import image as drawing
    from modelatlas.cli import transcribe
    from modelatlas.loading import load_model

    llm = load_model(model, log_calls=True)
    if image:  # before any other route (speech, image generation): a model that takes no images exits 2
        from modelatlas.cli.image_input import check_takes_images

        check_takes_images(llm)
    drawn = {"out": out, "n": n, "size": size, "seed": seed, "steps": steps, "guidance": guidance}
    drawn["negative_prompt"] = negative_prompt
    if drawing.makes_images(llm):
        drawing.image_command(llm, prompt, drawn, system, json_out)
        return
    drawing.refuse_image_options(llm, drawn)  # a text or speech model given --out: exit 2
    if transcribe.transcribes(llm):
        transcribe.transcribe_command(llm, prompt, language, word_timestamps, temperature, system, json_out)
        return
    if language is not None or word_timestamps:
        raise InvalidRequestError(
            f"--language and --word-timestamps are for speech models; {llm.id} is a {llm.record.mode} model.",
            hint="Leave them out, or pick a speech-recognition model such as local/whisper-base.",
        )
    sent = _text_prompt(llm, prompt, system, image)
    result = asyncio.run(_stream(llm, sent, max_tokens, temperature, not json_out))
    if json_out:
        print_json(result)
    else:
        _summary(result)


def _text_prompt(llm, prompt: str, system: str | None, image: list[str] | None):
    """What a text model is sent: the pictures before the text (cli.image_input), an audio file
    for a chat model that takes sound, else the text (standard input for '-')."""
    from modelatlas.cli import transcribe

    if image:
        from modelatlas.cli.image_input import image_prompt

        return image_prompt(llm, image, sys.stdin.read() if prompt == "-" else prompt, system)
    sent = transcribe.audio_prompt(llm, prompt, system)
    if sent is None:
        text = sys.stdin.read() if prompt == "-" else prompt
        sent = llm.prompt_for(text, system)
    return sent


async def _stream(llm, prompt, max_tokens: int, temperature: float, echo: bool) -> dict:
    parts: list[str] = []
    last = None
    try:
        async for chunk in llm.stream(prompt, max_tokens=max_tokens, temperature=temperature):
            if chunk.text:
                parts.append(chunk.text)
                if echo:
                    sys.stdout.write(chunk.text)
                    sys.stdout.flush()
            last = chunk
    finally:
        await llm.aclose()
    if echo:
        sys.stdout.write("\n")
    return {
        "model": llm.id,
        "text": "".join(parts),
        "finish_reason": last.finish_reason,
        "usage": {"input_tokens": last.usage.input_tokens, "output_tokens": last.usage.output_tokens},
        "latency_s": round(last.timing.latency_s, 4),
        "ttft_s": None if last.timing.ttft_s is None else round(last.timing.ttft_s, 4),
        "tokens_per_s": None if last.timing.tokens_per_s is None else round(last.timing.tokens_per_s, 1),
        "cost_usd": last.usage.cost_usd,
    }


def _summary(result: dict) -> None:
    usage = result["usage"]
    ttft = f"{result['ttft_s']:.2f}s" if result["ttft_s"] is not None else "?"
    rate = f"{result['tokens_per_s']:.0f} tok/s" if result["tokens_per_s"] else "? tok/s"
    console(stderr=True).print(
        f"[dim]{result['model']} · {usage['input_tokens']} in / {usage['output_tokens']} out · "
        f"first token {ttft} · {rate} · {result['latency_s']:.2f}s · ${result['cost_usd']:.6f}"
        f" · {result['finish_reason']}[/]"
    )
