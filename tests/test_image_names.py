"""One name per image: the code, runtime-images/ and the README agree, tagged with the version."""

from __future__ import annotations

import re

from inferline import __version__
from inferline.api import images
from inferline.api.backend import BUILTIN_BACKENDS

from .conftest import REPO

# Any mention of one of our images, with or without registry and tag.
MENTION = re.compile(r"(?:[\w.-]+/)*inferline/(runtime-gpu|runtime-cpu|operator)(?::[\w.-]+)?")


def _documents() -> dict[str, str]:
    files = [REPO / "README.md", *sorted((REPO / "runtime-images").rglob("*"))]
    return {str(f.relative_to(REPO)): f.read_text() for f in files if f.is_file()}


def test_images_are_tagged_with_the_package_version() -> None:
    assert f"ghcr.io/inferline/runtime-gpu:{__version__}" == images.GPU_RUNTIME_IMAGE
    assert f"ghcr.io/inferline/runtime-cpu:{__version__}" == images.CPU_RUNTIME_IMAGE
    assert f"ghcr.io/inferline/operator:{__version__}" == images.OPERATOR_IMAGE


def test_builtin_backends_use_the_runtime_images() -> None:
    assert BUILTIN_BACKENDS["triton"].image == images.GPU_RUNTIME_IMAGE
    assert BUILTIN_BACKENDS["inferline-cpu"].image == images.CPU_RUNTIME_IMAGE


def test_readme_and_runtime_images_name_them_as_the_code_does() -> None:
    mentions = {
        (where, m.group(0), m.group(1))
        for where, text in _documents().items()
        for m in MENTION.finditer(text)
    }
    named = {name for _, _, name in mentions}
    assert named == set(images.NAMES), "every image is named somewhere, by its full name"
    wrong = sorted((w, full) for w, full, name in mentions if full != images.image(name))
    assert not wrong, f"images named differently from api/images.py: {wrong}"


def test_the_gpu_runtime_is_built_on_the_triton_base_the_code_names() -> None:
    dockerfile = (REPO / "runtime-images/gpu/Dockerfile").read_text()
    assert images.TRITON_BASE_IMAGE in dockerfile
