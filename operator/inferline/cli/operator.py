"""`inferline operator`: run the operator (the operator image's entrypoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def operator(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Watch only this namespace (repeatable; default: every namespace).",
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            help="A kubeconfig to use (default: in-cluster, else $KUBECONFIG or ~/.kube/config)."
        ),
    ] = None,
    context: Annotated[str | None, typer.Option(help="The kubeconfig context.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Concurrent reconciles.")] = 4,
    resync: Annotated[
        float, typer.Option(min=10, help="Seconds between re-applying every pipeline.")
    ] = 600,
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics port (0: off).")] = 8080,
    health_port: Annotated[int, typer.Option(help="Liveness /healthz port (0: off).")] = 8081,
    bind_address: Annotated[str, typer.Option(help="Address for metrics and health.")] = "0.0.0.0",
    shm_size: Annotated[
        str, typer.Option(help="Memory-backed /dev/shm per runtime pod (python backend).")
    ] = "256Mi",
    dra: Annotated[
        bool,
        typer.Option(
            help="Place GPUs through Dynamic Resource Allocation where NVIDIA's DRA driver runs "
            "(watches ResourceSlices, DeviceClasses, ResourceClaims; --no-dra: device plugin "
            "only, no RBAC on resource.k8s.io needed)."
        ),
    ] = True,
    log_format: Annotated[str, typer.Option(help="text or json.")] = "text",
    verbose: Annotated[bool, typer.Option(help="Debug logging.")] = False,
) -> None:
    """Run the Inferline operator: reconcile InferencePipelines into serving workloads."""
    from ..controller.main import OperatorOptions, run
    from ..render.kube import RuntimeSettings

    if log_format not in ("text", "json"):
        raise typer.BadParameter("text or json", param_hint="--log-format")
    run(
        OperatorOptions(
            namespaces=tuple(namespace or ()),
            kubeconfig=kubeconfig,
            context=context,
            workers=workers,
            resync_seconds=resync,
            metrics_port=metrics_port,
            health_port=health_port,
            bind_address=bind_address,
            runtime=RuntimeSettings(shm_size=shm_size),
            dra=dra,
        ),
        log_format=log_format,
        verbose=verbose,
    )
