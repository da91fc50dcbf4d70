"""`modelatlas rag`: index documents into a knowledge base, search it, ask it questions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from modelatlas.cli.common import console, escape, handle_errors, print_json

app = typer.Typer(help="Retrieval augmented generation over your documents.", no_args_is_help=True)


@app.command("index")
@handle_errors
def index_command(
    paths: Annotated[list[str], typer.Argument(help="Files or folders (.txt, .md, .html, .pdf).")],
    name: Annotated[str, typer.Option("--name", help="The knowledge base's name.")],
    chunk_tokens: Annotated[
        int | None, typer.Option("--chunk-tokens", min=1, help="Tokens per chunk (new KB: 200).")
    ] = None,
    overlap: Annotated[
        int | None,
        typer.Option("--overlap", min=0, help="Tokens shared by neighbouring chunks (new KB: 40)."),
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="Embedding model (new KB: local/all-minilm-l6-v2).")
    ] = None,
    store: Annotated[str | None, typer.Option("--store", help="lancedb (default) or qdrant.")] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="A Qdrant server's URL (implies --store qdrant).")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Re-embed everything, with new settings.")
    ] = False,
) -> None:
    """Index documents into a knowledge base; running it again only re-embeds what changed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from modelatlas.rag.index import aindex

    columns = (TextColumn("Embedding chunks"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("embed", total=None)
        run = aindex(
            paths,
            name,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            embedder=embedder,
            store=store,
            url=url,
            rebuild=rebuild,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        report = asyncio.run(run)  # the CLI is the sync edge: one event loop for the whole run
    print_index_report(name, report)


def print_index_report(name: str, report) -> None:
    """The run's counts on stdout; each binary file left out as a warning on stderr."""
    for warning in report.warnings:
        console(stderr=True).print(f"[yellow]Warning:[/] {escape(warning)}", soft_wrap=True)
    skipped = [f"{report.skipped} skipped (not .txt, .md, .html or .pdf)"] if report.skipped else []
    if report.binary:
        skipped.append(f"{len(report.binary)} skipped (binary content, not text)")
    console().print(
        f"Knowledge base [bold]{escape(name)}[/]: {report.chunks} chunks. Files: {report.added} added, "
        f"{report.updated} updated, {report.removed} removed, {report.unchanged} unchanged"
        + "".join(f", {part}" for part in skipped)
        + "."
    )


@app.command("search")
@handle_errors
def search_command(
    kb: Annotated[str, typer.Argument(help="The knowledge base's name.")],
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many chunks.")] = 5,
    hybrid: Annotated[bool, typer.Option("--hybrid", help="Fuse vector and full-text search.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the chunks of KB that best match QUERY."""
    from modelatlas.rag.search import open_kb

    hits = asyncio.run(open_kb(kb).asearch(query, k=k, hybrid=hybrid))
    if json_out:
        print_json([{"rank": i, **h.to_dict()} for i, h in enumerate(hits, start=1)])
        return
    from rich.table import Table

    table = Table(title=f"{kb}: {query}", title_justify="left")
    for column in ("rank", "score", "source", "text"):
        table.add_column(column, overflow="fold")
    for i, hit in enumerate(hits, start=1):
        table.add_row(str(i), f"{hit.score:.3f}", escape(where(hit)), escape(snippet(hit.text)))
    console().print(table)


@app.command("ask")
@handle_errors
def ask_command(
    kb: Annotated[str, typer.Argument(help="The knowledge base's name.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    model: Annotated[str, typer.Option("--model", help="The model that answers.")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many chunks to retrieve.")] = 5,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 256,
    hybrid: Annotated[bool, typer.Option("--hybrid", help="Retrieve with hybrid search.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Answer QUESTION from KB with MODEL, citing the chunks it used."""
    from modelatlas.loading import load_model
    from modelatlas.rag.ask import ask

    llm = load_model(model, log_calls=True)

    async def answered():
        try:
            return await ask(kb, question, llm, k=k, max_tokens=max_tokens, hybrid=hybrid)
        finally:
            await llm.aclose()  # the CLI closes what it opened

    answer = asyncio.run(answered())
    if json_out:
        print_json(answer.to_dict())
        return
    out = console()
    out.print(escape(answer.text or "(no answer)"), soft_wrap=True)
    out.print()
    out.print("Sources:" if answer.cited else "Sources (the answer cites none; these were its context):")
    for c in answer.citations:
        out.print(f"  [{c.n}] {escape(where(c))}", soft_wrap=True)
    if answer.dropped:
        out.print(f"[dim]{answer.dropped} retrieved chunk(s) did not fit in the context window.[/]")


@app.command("list")
@handle_errors
def list_command(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the knowledge bases."""
    from modelatlas.rag.search import list_kbs

    found = list_kbs()
    if json_out:
        print_json(
            [m.model_dump(exclude={"files"}) | {"files": len(m.files), "chunks": m.chunks} for m in found]
        )
        return
    if not found:
        console().print("No knowledge bases yet. Build one: modelatlas rag index DOCS --name NAME")
        return
    from rich.table import Table

    table = Table(title="Knowledge bases", title_justify="left")
    for column in ("name", "files", "chunks", "embedder", "chunking", "store", "updated"):
        table.add_column(column)
    for m in found:
        store = f"{m.store} ({m.url})" if m.url else m.store
        chunking = f"{m.chunk_tokens}/{m.overlap}"
        table.add_row(m.name, str(len(m.files)), str(m.chunks), m.embedder, chunking, store, m.updated)
    console().print(table)


def where(hit) -> str:
    """source:position, the source relative to the working folder when it is inside it."""
    path, here = Path(hit.source), Path.cwd()
    if path.is_relative_to(here):
        path = path.relative_to(here)
    p = hit.position
    return f"{path}:{p.start}-{p.end} (chunk {p.index})"


def snippet(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
