"""What the tritonserver found on this machine can serve, for `inferline serve`."""

from __future__ import annotations

import os
from collections.abc import Mapping
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


def gpu_visible(dev: Path = Path("/dev"), environ: Mapping[str, str] = os.environ) -> bool:
    """An NVIDIA GPU is here and not hidden (CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES set to
    nothing, "-1" or "none" hide them, as CUDA and NVIDIA's container runtime read them)."""
    for var in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        value = environ.get(var)
        if value is not None and value.strip() in ("", "-1", "none", "void"):
            return False
    return any(dev.glob("nvidia[0-9]*"))
