"""`inferline serve` and `inferline infer`: the local half of the CLI.

`serve` runs the same compile path and the same runtime code as a pod; `infer` is a small
KServe-v2 client that types plain JSON values from the served model's metadata.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..api.common import Device
from ..errors import UserError
from .output import err, report, say

if TYPE_CHECKING:
    import numpy as np


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
    from ..compile import Overrides, check_paths, render_manifest
    from ..runtime.launch import serve_until_stopped
    from ..runtime.local import LOCAL_BACKEND, gpu_visible, local_backend_spec
    from ..runtime.prepare import prepare_repository
    from ..runtime.progress import RichProgress
    from ..runtime.repository import write_rendered
    from ..runtime.tritonserver import (
        Ports,
        ServerOptions,
        TritonProcess,
        check_ports_free,
        default_cache_dir,
        find_tritonserver,
    )

    install = find_tritonserver()
    overrides = Overrides(device, LOCAL_BACKEND, {LOCAL_BACKEND: local_backend_spec(install)})
    checked = check_paths(files, overrides, require_refs=True)
    if report(checked.problems):
        raise typer.Exit(1)
    if not checked.pipelines:
        raise UserError("no InferencePipeline to serve (pass the files that define them)")
    on_gpu = [
        f"{rp.name}/{s.step.name}"
        for rp in checked.pipelines
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
    manifest = render_manifest(checked.pipelines)
    write_rendered(manifest, work / "rendered")
    with RichProgress() as progress:
        prepare_repository(work / "rendered", work / "model_repository", progress)
    adapted = [
        f"{p.name}/{s.step} via {s.served_as}"
        for p in manifest.pipelines
        for s in p.steps
        if s.served_as.startswith("adapter")
    ]
    if adapted:
        say(f"adapters: {', '.join(adapted)}")

    log = work / "tritonserver.log"
    log.write_text("")
    server = TritonProcess(
        ServerOptions(work / "model_repository", ports, address), install, log=log
    )
    host = "127.0.0.1" if address in ("0.0.0.0", "") else address

    def ready() -> None:
        for p in manifest.pipelines:
            devices = ", ".join(sorted({s.device for s in p.steps}))
            say(f"serving {p.name} ({len(p.steps)} steps) on {devices}")
            say(f"  http     http://{host}:{http_port}/v2/models/{p.served_name}/infer")
            say(f"  grpc     {host}:{grpc_port}")
            say(f"  metrics  http://{host}:{metrics_port}/metrics")
            say(f"  inputs   {', '.join(p.signature('inputs'))}")
            say(f"  outputs  {', '.join(p.signature('outputs'))}")
        say(f"server log: {log}\nPress Ctrl-C to stop.")

    code = serve_until_stopped(server, ready)
    if code != 0:
        err.print(f"tritonserver exited with status {code}; see {log}", markup=False)
        raise typer.Exit(code)


def infer(
    model: Annotated[str, typer.Argument(help="The pipeline (or model) to call.")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help='A KServe v2 request body, or a JSON file {"inputs": {"NAME": [[...], ...]}}.',
        ),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            help="NAME=VALUE: JSON (X='[[1,2,3]]') or a comma-separated list (X=1,2,3); "
            "a missing batch dimension is added (repeatable).",
        ),
    ] = None,
    url: Annotated[str, typer.Option(help="Server HTTP address.")] = "127.0.0.1:8000",
) -> None:
    """Send one request to a served pipeline and print its outputs as JSON."""
    values: dict[str, Any] = {}
    if data is not None:
        values.update(read_request_file(data))
    for item in inputs or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UserError(f"--input {item!r}: expected NAME=VALUE, e.g. X=1,2,3")
        values[name] = parse_value(raw)
    result = infer_http(url, model, values)
    say(json.dumps(result))


def parse_value(raw: str) -> Any:
    """A command-line value: JSON, or a comma-separated list of numbers or words."""
    try:
        return json.loads(raw)
    except ValueError:
        pass
    items = [x.strip() for x in raw.split(",")]
    parsed: list[Any] = []
    for x in items:
        try:
            parsed.append(json.loads(x))
        except ValueError:
            parsed.append(x)  # a word: a BYTES element
    return parsed


def read_request_file(path: Path) -> dict[str, Any]:
    """Input values from a KServe v2 request body, or from {"inputs": {NAME: nested lists}}."""
    import numpy as np

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


def _typed(name: str, value: Any, dtype: str, shape: list[int]) -> np.ndarray:
    import numpy as np
    from tritonclient.utils import triton_to_np_dtype

    np_dtype = object if dtype == "BYTES" else triton_to_np_dtype(dtype)
    try:
        arr = np.array(value, dtype=np_dtype)
    except (TypeError, ValueError) as e:
        raise UserError(f"input {name}: cannot be read as {dtype}: {e}") from None
    if arr.ndim == len(shape) - 1:
        arr = arr[np.newaxis, ...]  # one request of a batching model: add the batch dimension
    if arr.ndim != len(shape):
        raise UserError(f"input {name}: has {arr.ndim} dimensions; the model takes {shape}")
    if dtype == "BYTES":
        arr = np.vectorize(lambda v: v.encode() if isinstance(v, str) else v, otypes=[object])(arr)
    return arr


def infer_http(url: str, model: str, values: dict[str, Any]) -> dict[str, Any]:
    """Call `model` at `url` with plain (JSON-like) values, typed from the model's metadata."""
    import numpy as np
    import tritonclient.http as th
    from tritonclient.utils import InferenceServerException

    client = th.InferenceServerClient(url)
    try:
        meta = client.get_model_metadata(model)
    except InferenceServerException as e:
        raise UserError(f"{model} at {url}: {e.message()}") from None
    except (ConnectionError, OSError) as e:
        raise UserError(f"cannot reach {url}: {e}; is `inferline serve` running?") from None
    expected = {i["name"]: i for i in meta["inputs"]}
    missing = sorted(set(expected) - set(values))
    unknown = sorted(set(values) - set(expected))
    if missing or unknown:
        raise UserError(
            f"{model} takes inputs {sorted(expected)}; missing {missing}, unknown {unknown}"
        )
    reqs = []
    for name, info in expected.items():
        arr = _typed(name, values[name], info["datatype"], list(info["shape"]))
        i = th.InferInput(name, list(arr.shape), info["datatype"])
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
