"""`inferline validate`, `render` and `crds`: manifests in, checks and generated files out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..api.common import Device
from ..compile import Overrides, check_paths
from .output import err, plural, report, say, table

Files = Annotated[
    list[Path],
    typer.Argument(
        help="YAML files or directories (multi-document YAML is fine).", show_default=False
    ),
]
DeviceOption = Annotated[
    Device | None,
    typer.Option(
        "--device",
        case_sensitive=False,
        help="Run every step of every pipeline on this device (overrides placement).",
    ),
]


def validate(files: Files) -> None:
    """Check manifests: schema, DAG, tensors, references, placement. Exit 1 on any error."""
    checked = check_paths(files)
    if report(checked.problems):
        err.print(f"invalid: {plural(len(checked.errors), 'problem')}", markup=False)
        raise typer.Exit(1)
    others = f" ({plural(checked.others, 'object')} of other APIs not checked)"
    say(
        f"valid: {plural(checked.objects, 'object')}, "
        f"{plural(len(checked.pipelines), 'pipeline')} checked" + (others if checked.others else "")
    )


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
            help="Fetch artifacts into the repository (default: list them in render.json for "
            "the runtime to fetch).",
        ),
    ] = False,
) -> None:
    """Compile pipelines into OUTPUT/render.json and a Triton model repository."""
    from ..compile import render_manifest
    from ..runtime.repository import MODEL_REPOSITORY, write_rendered

    checked = check_paths(files, Overrides(device, backend), require_refs=True)
    if report(checked.problems):
        raise typer.Exit(1)
    manifest = render_manifest(checked.pipelines)
    write_rendered(manifest, output, fetch_artifacts=fetch_artifacts)
    rows = [("pipeline", "step", "triton model", "format", "served as", "device")]
    for p in manifest.pipelines:
        rows += [(p.name, s.step, s.model, s.format, s.served_as, s.device) for s in p.steps]
        rows.append((p.name, "(ensemble)", p.served_name, "ensemble", "native:ensemble", ""))
    say(table(rows))
    say(f"wrote {output / 'render.json'} and {output / MODEL_REPOSITORY}")


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
    from ..api.crd import all_crds
    from ..yamlio import dump_all, dump_yaml

    generated = all_crds()
    if output is None:
        sys.stdout.write(dump_all(list(generated.values())))
        return
    output.mkdir(parents=True, exist_ok=True)
    for name, crd in generated.items():
        (output / name).write_text(dump_yaml(crd))
    say(f"wrote {len(generated)} CRDs to {output}")
