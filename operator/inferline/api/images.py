"""The images Inferline ships, named in one place and versioned with the package.

The built-in ClusterBackends, the chart, runtime-images/ (its README and each Dockerfile's build
line) and the README all name these; tests/test_image_names.py fails when any of them differs.
"""

from __future__ import annotations

from .. import __version__

REGISTRY = "ghcr.io/inferline"
# NVIDIA's Triton image the GPU runtime is built on (NGC 24.10 ships tritonserver 2.51.0).
TRITON_BASE_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
NAMES = ("runtime-gpu", "runtime-cpu", "operator")


def image(name: str, version: str = __version__) -> str:
    """`ghcr.io/inferline/<name>:<version>` for one of NAMES."""
    if name not in NAMES:
        raise ValueError(f"unknown image {name!r}; Inferline ships {', '.join(NAMES)}")
    return f"{REGISTRY}/{name}:{version}"


GPU_RUNTIME_IMAGE = image("runtime-gpu")
CPU_RUNTIME_IMAGE = image("runtime-cpu")
OPERATOR_IMAGE = image("operator")
