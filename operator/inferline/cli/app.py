"""The typer app: global options, command registration, and the one place errors end.

User mistakes end in a one-line message per problem and exit code 1, never a traceback.
Command modules import their heavy dependencies (numpy, tritonclient, kopf) inside the
command, so `inferline validate` starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import UserError
from . import local, manifests, operator
from .output import err, say

app = typer.Typer(
    name="inferline",
    help="Serve ML inference pipelines on GPUs: validate and render manifests, serve them "
    "locally, generate CRDs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        say(f"inferline {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Inferline: GPU inference pipelines on Kubernetes, and locally."""


app.command()(manifests.validate)
app.command()(manifests.render)
app.command()(manifests.crds)
app.command()(local.serve)
app.command()(local.infer)
app.command()(operator.operator)


def main() -> None:
    try:
        app()
    except UserError as e:
        err.print(f"error: {e}", markup=False)
        sys.exit(1)
    except OSError as e:  # an unwritable -o, a full disk: the user's to fix, not a crash
        err.print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
