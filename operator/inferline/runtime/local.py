"""What the tritonserver found on this machine can serve, for `inferline serve`."""

from __future__ import annotations

from pathlib import Path

from ..api.backend import BackendSpec
from ..api.common import Device
from ..api.model import ModelFormat
from .tritonserver import NGC_ROOT, TritonInstall

# The ClusterBackend name `inferline serve` serves every pipeline with.
LOCAL_BACKEND = "inferline-local"


def local_backend_spec(install: TritonInstall) -> BackendSpec:
    """All native formats in NVIDIA's image; else python (the nvidia-pytriton build), with
    adapters for the rest."""
    ngc = install.binary.is_relative_to(NGC_ROOT)
    formats = list(ModelFormat) if ngc else [ModelFormat.PYTHON]
    return BackendSpec(image="local", formats=formats, devices=[Device.CPU, Device.GPU])


def gpu_visible() -> bool:
    return any(Path("/dev").glob("nvidia[0-9]*"))
