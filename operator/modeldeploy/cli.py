"""The `modeldeploy` command line."""

import typer

from modeldeploy import __version__

app = typer.Typer(help="Deploy ML models on Kubernetes: the operator and its tools.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """modeldeploy: the operator (`run`), its CRD (`crd`), the model fetcher and rollout controls."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
