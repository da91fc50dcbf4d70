"""`modelatlas`: the entry point. Heavy libraries are imported inside the commands."""

from __future__ import annotations

import typer

from modelatlas.cli import catalog, demo, keys, models, rag, run, runs
from modelatlas.cli.choose import choose_command
from modelatlas.cli.eval import eval_command
from modelatlas.cli.finetune import finetune_command
from modelatlas.cli.improve import improve_command
from modelatlas.cli.loadtest import loadtest_command
from modelatlas.cli.serve import serve_command
from modelatlas.cli.studio import studio_command
from modelatlas.cli.usage import usage_command

app = typer.Typer(
    name="modelatlas",
    help="Explore AI models, compare them on your own data, improve the results, deploy the one you pick.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models.app, name="models")
app.add_typer(catalog.app, name="catalog")
app.add_typer(runs.app, name="runs")
app.add_typer(rag.app, name="rag")
app.add_typer(keys.app, name="keys")
app.command("eval")(eval_command)
app.command("choose")(choose_command)
app.command("finetune")(finetune_command)
app.command("improve")(improve_command)
app.command("loadtest")(loadtest_command)
app.command("run")(run.run)
app.command("demo")(demo.demo)
app.command("serve")(serve_command)
app.command("studio")(studio_command)
app.command("usage")(usage_command)


@app.command("version")
def version() -> None:
    """Print the modelatlas version."""
    from modelatlas import __version__

    typer.echo(__version__)


def main() -> None:
    app()
