"""`modelatlas catalog`: search, read cards, add endpoints and files, sync from models.dev."""

from __future__ import annotations

from typing import Annotated

import typer

from modelatlas.cli.common import console, handle_errors, print_json

app = typer.Typer(
    help="Thousands of hosted models plus the ones on this machine: search them, read their cards.",
    no_args_is_help=True,
)


Modality = Annotated[str | None, typer.Option(help="An input or output modality: text, image, audio, …")]
Arch = Annotated[str | None, typer.Option(help="decoder-only, encoder-only, encoder-decoder, diffusion")]
Licence = Annotated[str | None, typer.Option(help="Licence, matched as a substring (apache, mit, …).")]
Proprietary = Annotated[bool, typer.Option("--proprietary", help="Only models without open weights.")]
Fits = Annotated[bool, typer.Option("--fits", help="Only models that fit in this machine's memory.")]


@app.command("search")
@handle_errors
def search(
    query: Annotated[str | None, typer.Argument(help="Words of the name, matched fuzzily.")] = None,
    task: Annotated[str | None, typer.Option(help="chat, code, embeddings, text-generation, …")] = None,
    modality: Modality = None,
    arch: Arch = None,
    license: Licence = None,
    open_: Annotated[bool, typer.Option("--open", help="Only models with open weights.")] = False,
    proprietary: Proprietary = False,
    local: Annotated[bool, typer.Option("--local", help="Only models that run on this machine.")] = False,
    hosted: Annotated[bool, typer.Option("--hosted", help="Only hosted models.")] = False,
    provider: Annotated[str | None, typer.Option(help="A provider id, e.g. openai, azure, local.")] = None,
    max_price: Annotated[float | None, typer.Option(min=0, help="Most USD per 1M input tokens.")] = None,
    min_context: Annotated[
        str | None, typer.Option(help="Least context window, in tokens: 8192, 32k, 1M.")
    ] = None,
    fits: Fits = False,
    runnable: Annotated[bool, typer.Option("--runnable", help="Only models that can run now.")] = False,
    collection: Annotated[str | None, typer.Option(help="A collection (see `catalog collections`).")] = None,
    sort: Annotated[
        str, typer.Option(help="relevance, name, context, price_in, price_out or newest (as in the studio).")
    ] = "relevance",
    order: Annotated[
        str | None, typer.Option(help="asc or desc (default: the sort's usual one, e.g. cheapest first).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most results to show.")] = 25,
    json_out: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """Search the catalog by name and facets."""
    from modelatlas.catalog.catalog import load_catalog
    from modelatlas.catalog.format import parse_tokens
    from modelatlas.catalog.search import Filters
    from modelatlas.catalog.search import search as run_search
    from modelatlas.errors import ConfigError

    if (open_ and proprietary) or (local and hosted):
        raise ConfigError("--open/--proprietary and --local/--hosted each take one side.")
    filters = Filters(
        query=query,
        task=task,
        modality=modality,
        arch=arch,
        license=license,
        open_weights=True if open_ else False if proprietary else None,
        hosting="local" if local else "hosted" if hosted else None,
        provider=provider,
        max_price=max_price,
        min_context=parse_tokens(min_context) if min_context else None,
        fits=fits,
        runnable=runnable,
        collection=collection,
    )
    catalog = load_catalog()
    found = run_search(catalog, filters, sort=sort, limit=limit, order=order)
    if json_out:
        print_json([r.facets() for r in found])
        return
    _table(
        found, f"{len(found)} shown of {len(catalog)} models (catalog of {catalog.date or 'unknown date'})"
    )


def _table(records, title: str) -> None:
    from rich.table import Table

    from modelatlas.catalog.format import badges, money, tokens

    table = Table(title=title, title_justify="left")
    for column, justify in [
        ("id", "left"),
        ("tasks", "left"),
        ("context", "right"),
        ("$/1M in", "right"),
        ("$/1M out", "right"),
        ("", "left"),
    ]:
        table.add_column(column, justify=justify, overflow="fold", no_wrap=column == "id")
    for r in records:
        price = r.price
        table.add_row(
            r.id,
            ", ".join(r.tasks) or "?",
            tokens(r.context_length),
            money(price.input if price else None, r),
            money(price.output if price else None, r),
            badges(r),
        )
    console().print(table)


@app.command("show")
@handle_errors
def show(
    model_id: Annotated[str, typer.Argument(help="A model id, e.g. openai/gpt-4.1-mini.")],
    fmt: Annotated[str, typer.Option("--format", help="text, md, json or hf.")] = "text",
) -> None:
    """Show a model's card."""
    from modelatlas.catalog import cards
    from modelatlas.catalog.catalog import load_catalog
    from modelatlas.errors import ConfigError

    if fmt not in ("text", "md", "json", "hf"):
        raise ConfigError(f"Unknown format {fmt!r}.", hint="Valid values: text, md, json, hf.")
    record = load_catalog().get(model_id)
    if fmt == "text":
        from rich.markdown import Markdown

        console().print(Markdown(cards.render(record, "md")))
    else:
        typer.echo(cards.render(record, fmt))


@app.command("collections")
@handle_errors
def show_collections(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the collections: curated ones, then one per provider."""
    from modelatlas.catalog.catalog import load_catalog
    from modelatlas.catalog.collections import collections

    found = collections(load_catalog())
    if json_out:
        print_json([{"name": c.name, "description": c.description, "count": n} for c, n in found])
        return
    from rich.table import Table

    table = Table(title="Collections (use with: catalog search --collection NAME)", title_justify="left")
    for column in ("collection", "models", "about"):
        table.add_column(column)
    for c, n in found:
        table.add_row(c.name, str(n), c.description)
    console().print(table)


@app.command("sync")
@handle_errors
def sync(
    source: Annotated[
        str | None, typer.Option(help="An api.json URL, a .json file or a models.dev checkout.")
    ] = None,
) -> None:
    """Refresh the hosted-model catalog from models.dev (or a local copy of it)."""
    from modelatlas.catalog import sync as syncing
    from modelatlas.catalog.catalog import forget

    with console().status("Fetching the catalog…"):
        snap = syncing.sync(source)
    forget()
    console().print(f"Catalog updated: {len(snap.records)} models from {snap.source} (as of {snap.date}).")


@app.command("add")
@handle_errors
def add(
    file: Annotated[str | None, typer.Argument(help="A YAML file of model records.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="An OpenAI-compatible server's URL.")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable with the server's key.")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Provider id for the server's models.")] = None,
) -> None:
    """Register every model of an OpenAI-compatible server, or the models in a YAML file."""
    from modelatlas.catalog import endpoints, user
    from modelatlas.errors import ConfigError

    if bool(file) == bool(endpoint):
        raise ConfigError(
            "Give either a YAML FILE or --endpoint URL.",
            hint="modelatlas catalog add --endpoint http://127.0.0.1:11434/v1",
        )
    records = (
        endpoints.list_endpoint(endpoint, api_key_env, provider) if endpoint else user.records_from_yaml(file)
    )
    for record in records:
        user.add(record)
    console().print(f"Registered {len(records)} model(s): " + ", ".join(r.id for r in records))


@app.command("providers")
@handle_errors
def providers(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the providers and how many models each has."""
    from modelatlas.catalog.catalog import load_catalog

    counts = load_catalog().providers()
    if json_out:
        print_json(counts)
        return
    console().print(", ".join(f"{p} ({n})" for p, n in counts.items()))
