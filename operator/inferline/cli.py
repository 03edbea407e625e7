"""The `inferline` command line: validate, render, crds, serve, infer.

User mistakes end in a one-line message per problem and exit code 1, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import __version__
from .api.backend import BackendSpec
from .api.common import Device
from .api.load import Problem, load_paths
from .api.overrides import override_backend, override_device
from .api.validate import ResolvedPipeline, validate_documents
from .errors import UserError
from .render.summary import RenderSummary, check_unique_model_names

app = typer.Typer(
    name="inferline",
    help="Serve ML inference pipelines on GPUs: validate and render manifests, serve them "
    "locally, generate CRDs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Files = Annotated[
    list[Path],
    typer.Argument(
        help="YAML files or directories (multi-document YAML is fine).", show_default=False
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"inferline {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Inferline: GPU inference pipelines on Kubernetes, and locally."""


DeviceOption = Annotated[
    Device | None,
    typer.Option(
        "--device",
        case_sensitive=False,
        help="Run every step of every pipeline on this device (overrides placement).",
    ),
]


def load_and_check(
    files: list[Path],
    device: Device | None = None,
    backend: str | None = None,
    extra_backends: dict[str, BackendSpec] | None = None,
) -> tuple[list[Problem], list[ResolvedPipeline], int]:
    loaded = load_paths(files)
    docs = loaded.documents
    if device is not None:
        docs = override_device(docs, device)
    if backend is not None:
        docs = override_backend(docs, backend)
    semantic, resolved = validate_documents(docs, extra_backends)
    return loaded.problems + semantic, resolved, len(docs)


def report(problems: list[Problem]) -> bool:
    """Print problems one per line; True when any is an error."""
    for p in problems:
        (err if p.severity == "error" else out).print(str(p), markup=False)
    return any(p.severity == "error" for p in problems)


@app.command()
def validate(files: Files) -> None:
    """Check manifests: schema, DAG, tensors, references, placement. Exit 1 on any error."""
    problems, resolved, count = load_and_check(files)
    if report(problems):
        n = sum(p.severity == "error" for p in problems)
        err.print(f"invalid: {n} problem{'s' * (n != 1)}", markup=False)
        raise typer.Exit(1)
    out.print(
        f"valid: {count} object{'s' * (count != 1)}, {len(resolved)} pipeline"
        f"{'s' * (len(resolved) != 1)} checked",
        markup=False,
    )


@app.command()
def render(
    files: Files,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Directory to write into (replaced).")
    ],
    device: DeviceOption = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="Serve with this ClusterBackend instead of the spec's."),
    ] = None,
    fetch_artifacts: Annotated[
        bool,
        typer.Option(
            "--fetch/--no-fetch",
            help="Fetch artifacts into the repository (default: list them only).",
        ),
    ] = False,
) -> None:
    """Compile pipelines into a Triton model repository (OUTPUT/model_repository)."""
    problems, resolved, _ = load_and_check(files, device, backend)
    if report(problems):
        raise typer.Exit(1)
    summary = write_rendered(resolved, output, fetch_artifacts)
    out.print(summary.table(), markup=False)
    out.print(f"wrote {output / 'model_repository'}", markup=False)


def write_rendered(
    resolved: list[ResolvedPipeline], output: Path, fetch_artifacts: bool = False
) -> RenderSummary:
    """Render pipelines into OUTPUT/model_repository and OUTPUT/render.json."""
    from .render.summary import render_summary
    from .render.triton import render_repository
    from .runtime.repository import write_repository

    if not resolved:
        raise UserError("no InferencePipeline to render (pass the files that define them)")
    repos = [render_repository(rp) for rp in resolved]
    check_unique_model_names(repos)
    unfetched = write_repository(
        repos, output / "model_repository", fetch_artifacts=fetch_artifacts
    )
    summary = render_summary(resolved, repos, unfetched)
    (output / "render.json").write_text(summary.to_json())
    return summary


@app.command()
def crds(
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write one file per CRD into this directory (default: print all to stdout).",
        ),
    ] = None,
) -> None:
    """Print (or write) the CustomResourceDefinitions generated from the API models."""
    from .api.crd import all_crds
    from .yamlio import dump_all, dump_yaml

    generated = all_crds()
    if output is None:
        sys.stdout.write(dump_all(list(generated.values())))
        return
    output.mkdir(parents=True, exist_ok=True)
    for name, crd in generated.items():
        (output / name).write_text(dump_yaml(crd))
    out.print(f"wrote {len(generated)} CRDs to {output}", markup=False)


from .serve_cmd import register as _register_serve  # noqa: E402

_register_serve(app)


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


if __name__ == "__main__":
    main()
