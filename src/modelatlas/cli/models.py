"""`modelatlas models`: list, add and remove the models that can run here."""

from __future__ import annotations

from typing import Annotated, get_args

import typer

from modelatlas.cli.common import console, handle_errors, print_json

app = typer.Typer(
    help="The models that can run here: bundled local models and the ones you add.", no_args_is_help=True
)


@app.command("list")
@handle_errors
def list_models(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the models that can run now (local ones and configured endpoints)."""
    from modelatlas.backends.declared import facts
    from modelatlas.catalog import runnable_records

    records = runnable_records()
    if json_out:
        print_json([r.model_dump(mode="json", exclude_none=True) for r in records])
        return
    from rich.table import Table

    table = Table(title="Models that can run here")
    for column in ("id", "mode", "backend", "context", "where"):
        table.add_column(column)
    for r in records:
        where = facts(r).where or ("bundled package" if r.provider == "local" else r.location or "")
        table.add_row(r.id, r.mode, r.backend, str(r.context_length or "?"), where)
    console().print(table)


@app.command("add")
@handle_errors
def add_model(
    model_id: Annotated[
        str, typer.Argument(help="provider/model, e.g. openai/gpt-4.1-mini or ollama/llama3.2")
    ],
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL (…/v1).")] = None,
    remote_name: Annotated[str | None, typer.Option("--model", help="The name the server uses.")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="Environment variable that holds the key.")] = None,
    azure_endpoint: Annotated[str | None, typer.Option(help="Azure OpenAI endpoint URL.")] = None,
    api_version: Annotated[str | None, typer.Option(help="Azure OpenAI api-version.")] = None,
    deployment: Annotated[str | None, typer.Option(help="Azure OpenAI deployment name.")] = None,
    path: Annotated[
        str | None,
        typer.Option(
            help="A .gguf file or Hugging Face folder; with --mode transcription, a faster-whisper folder; "
            "with --mode image_generation, a diffusers pipeline folder or a .safetensors/.ckpt checkpoint."
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="chat, completion, embedding, transcription or image_generation.")
    ] = "chat",
    context_length: Annotated[int | None, typer.Option(min=1, help="Context window in tokens.")] = None,
    price_input: Annotated[float | None, typer.Option(min=0, help="USD per 1M input tokens.")] = None,
    price_output: Annotated[float | None, typer.Option(min=0, help="USD per 1M output tokens.")] = None,
    price_image: Annotated[
        float | None, typer.Option(min=0, help="USD per image made (image-generation models).")
    ] = None,
) -> None:
    """Add a hosted model, an OpenAI-compatible server's model, or a model file."""
    from modelatlas.catalog import user
    from modelatlas.catalog.records import Mode, Price
    from modelatlas.errors import ConfigError

    modes = get_args(Mode)
    if mode not in modes:
        raise ConfigError(f"--mode {mode!r} is not one of {', '.join(modes)}.", hint="Pick one of those.")
    price = None
    if price_input is not None or price_output is not None:
        price = Price(input=price_input or 0.0, output=price_output or 0.0)
    if price_image is not None:
        price = (price or Price()).model_copy(update={"per_image": price_image})
    if path:
        record = user.file_record(model_id, path, mode)
        if mode == "image_generation" and price is not None:
            record = record.model_copy(update={"price": price})
    else:
        record = user.endpoint_record(
            model_id,
            base_url=base_url,
            remote_name=remote_name,
            api_key_env=api_key_env,
            azure_endpoint=azure_endpoint,
            api_version=api_version,
            deployment=deployment,
            mode=mode,
            context_length=context_length,
            price=price,
        )
    user.add(record)
    console().print(f"Added [bold]{record.id}[/] ({record.backend}).")


@app.command("remove")
@handle_errors
def remove_model(model_id: Annotated[str, typer.Argument(help="The id of a model you added.")]) -> None:
    """Remove a model you added."""
    from modelatlas.catalog import user

    user.remove(model_id)
    console().print(f"Removed {model_id}.")
