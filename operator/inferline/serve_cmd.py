"""`inferline serve` and `inferline infer`: the local half of the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from .api.backend import BackendSpec
from .api.common import Device
from .api.model import ModelFormat
from .errors import UserError

LOCAL_BACKEND = "inferline-local"


def local_backend_spec(ngc: bool) -> BackendSpec:
    """What the tritonserver found here can serve: all formats in NVIDIA's image, else python
    (the nvidia-pytriton build), with adapters for the rest."""
    formats = list(ModelFormat) if ngc else [ModelFormat.PYTHON]
    return BackendSpec(image="local", formats=formats, devices=[Device.CPU, Device.GPU])


def gpu_visible() -> bool:
    return any(Path("/dev").glob("nvidia[0-9]*"))


def _signature(tensors: list[str]) -> str:
    return ", ".join(tensors)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        files: Annotated[
            list[Path], typer.Argument(help="Manifests: files or directories.", show_default=False)
        ],
        device: Annotated[
            Device | None,
            typer.Option(
                "--device",
                case_sensitive=False,
                help="Run every step on this device (default: the manifests' placement).",
            ),
        ] = None,
        http_port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
        grpc_port: Annotated[int, typer.Option(help="gRPC port.")] = 8001,
        metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 8002,
        address: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
        workdir: Annotated[
            Path | None,
            typer.Option(help="Where to assemble the repository (default: a cache folder)."),
        ] = None,
    ) -> None:
        """Serve pipelines locally with the same runtime a pod runs. Ctrl-C stops."""
        from .cli import err, load_and_check, out, report, write_rendered
        from .runtime.launch import serve_until_stopped
        from .runtime.prepare import prepare_repository
        from .runtime.progress import RichProgress
        from .runtime.tritonserver import (
            NGC_ROOT,
            Ports,
            ServerOptions,
            TritonProcess,
            check_ports_free,
            default_cache_dir,
            find_tritonserver,
        )

        install = find_tritonserver()
        ngc = install.binary.is_relative_to(NGC_ROOT)
        problems, resolved, _ = load_and_check(
            files, device, LOCAL_BACKEND, {LOCAL_BACKEND: local_backend_spec(ngc)}
        )
        if report(problems):
            raise typer.Exit(1)
        if not resolved:
            raise UserError("no InferencePipeline to serve (pass the files that define them)")
        on_gpu = [
            f"{rp.name}/{s.step.name}"
            for rp in resolved
            for s in rp.steps
            if s.device is Device.GPU
        ]
        if on_gpu and not gpu_visible():
            raise UserError(
                f"{', '.join(on_gpu[:3])}{' ...' if len(on_gpu) > 3 else ''} ask "
                "for a GPU, but no NVIDIA GPU is visible here; add --device cpu"
            )
        ports = Ports(http_port, grpc_port, metrics_port)
        check_ports_free(ports, address)

        key = hashlib.sha256("|".join(sorted(str(f.resolve()) for f in files)).encode())
        work = workdir or default_cache_dir() / "serve" / key.hexdigest()[:12]
        summary = write_rendered(resolved, work / "rendered")
        with RichProgress() as progress:
            prepare_repository(work / "rendered", work / "model_repository", progress)
        adapted = [
            f"{p.name}/{s.step} via {s.served_as}"
            for p in summary.pipelines
            for s in p.steps
            if s.served_as.startswith("adapter")
        ]
        if adapted:
            out.print(f"adapters: {', '.join(adapted)}", markup=False)

        log = work / "tritonserver.log"
        log.write_text("")
        server = TritonProcess(
            ServerOptions(work / "model_repository", ports, address), install, log=log
        )
        host = "127.0.0.1" if address in ("0.0.0.0", "") else address

        def ready() -> None:
            for rp, ps in zip(resolved, summary.pipelines, strict=True):
                out.print(
                    f"serving {rp.name} ({len(ps.steps)} steps) on "
                    f"{', '.join(sorted({s.device for s in ps.steps}))}",
                    markup=False,
                )
                out.print(
                    f"  http     http://{host}:{http_port}/v2/models/{rp.name}/infer", markup=False
                )
                out.print(f"  grpc     {host}:{grpc_port}", markup=False)
                out.print(f"  metrics  http://{host}:{metrics_port}/metrics", markup=False)
                out.print(f"  inputs   {_signature(ps.inputs)}", markup=False)
                out.print(f"  outputs  {_signature(ps.outputs)}", markup=False)
            out.print(f"server log: {log}\nPress Ctrl-C to stop.", markup=False)

        code = serve_until_stopped(server, ready)
        if code != 0:
            err.print(f"tritonserver exited with status {code}; see {log}", markup=False)
            raise typer.Exit(code)

    @app.command()
    def infer(
        model: Annotated[str, typer.Argument(help="The pipeline (or model) to call.")],
        data: Annotated[
            Path | None,
            typer.Option("--data", help='A JSON file: {"inputs": {"NAME": [[...], ...]}}.'),
        ] = None,
        inputs: Annotated[
            list[str] | None,
            typer.Option("--input", "-i", help="NAME=JSON, e.g. X='[[1,2,3]]' (repeatable)."),
        ] = None,
        url: Annotated[str, typer.Option(help="Server HTTP address.")] = "127.0.0.1:8000",
    ) -> None:
        """Send one request to a served pipeline and print its outputs as JSON."""
        from .cli import out

        values: dict[str, Any] = {}
        if data is not None:
            values.update(read_request_file(data))
        for item in inputs or []:
            name, sep, raw = item.partition("=")
            if not sep:
                raise UserError(f"--input {item!r}: expected NAME=JSON")
            try:
                values[name] = json.loads(raw)
            except ValueError as e:
                raise UserError(f"--input {name}: not JSON: {e}") from None
        result = infer_http(url, model, values)
        out.print(json.dumps(result), markup=False, soft_wrap=True)


def read_request_file(path: Path) -> dict[str, Any]:
    """Input values from a KServe v2 request body, or from {"inputs": {NAME: nested lists}}."""
    try:
        body = json.loads(path.read_text())
        inputs = body["inputs"]
        if isinstance(inputs, dict):
            return dict(inputs)
        return {
            i["name"]: np.array(i["data"], dtype=object).reshape(i["shape"]).tolist()
            for i in inputs
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"{path}: not a request body (expected KServe v2 JSON with "
            f'inputs[].name/shape/data, or {{"inputs": {{NAME: [...]}}}}): '
            f"{type(e).__name__}: {e}"
        ) from None


def infer_http(url: str, model: str, values: dict[str, Any]) -> dict[str, Any]:
    """Call `model` at `url` with plain (JSON-like) values, typed from the model's metadata."""
    import tritonclient.http as th
    from tritonclient.utils import InferenceServerException, triton_to_np_dtype

    client = th.InferenceServerClient(url)
    try:
        meta = client.get_model_metadata(model)
    except InferenceServerException as e:
        raise UserError(f"{model} at {url}: {e.message()}") from None
    except (ConnectionError, OSError) as e:
        raise UserError(f"cannot reach {url}: {e}; is `inferline serve` running?") from None
    expected = {i["name"]: i["datatype"] for i in meta["inputs"]}
    missing = sorted(set(expected) - set(values))
    unknown = sorted(set(values) - set(expected))
    if missing or unknown:
        raise UserError(
            f"{model} takes inputs {sorted(expected)}; missing {missing}, unknown {unknown}"
        )
    reqs = []
    for name, dtype in expected.items():
        np_dtype = object if dtype == "BYTES" else triton_to_np_dtype(dtype)
        arr = np.array(values[name], dtype=np_dtype)
        if dtype == "BYTES":
            arr = np.vectorize(lambda v: v.encode() if isinstance(v, str) else v, otypes=[object])(
                arr
            )
        i = th.InferInput(name, list(arr.shape), dtype)
        i.set_data_from_numpy(arr)
        reqs.append(i)
    try:
        res = client.infer(model, reqs)
    except InferenceServerException as e:
        raise UserError(f"{model}: {e.message()}") from None
    outputs = {}
    for o in meta["outputs"]:
        arr = res.as_numpy(o["name"])
        if arr is not None and arr.dtype == object:
            arr = np.vectorize(lambda b: b.decode(errors="replace"), otypes=[object])(arr)
        outputs[o["name"]] = arr.tolist() if arr is not None else None
    return {"model": model, "outputs": outputs}
