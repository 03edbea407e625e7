"""What `inferline serve` concludes about this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferline.runtime.local import gpu_visible


@pytest.mark.parametrize(
    ("environ", "visible"),
    [
        ({}, True),
        ({"CUDA_VISIBLE_DEVICES": "0"}, True),
        ({"CUDA_VISIBLE_DEVICES": ""}, False),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, False),
        ({"NVIDIA_VISIBLE_DEVICES": "none"}, False),
        ({"NVIDIA_VISIBLE_DEVICES": "void"}, False),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, True),
    ],
)
def test_gpus_can_be_hidden(tmp_path: Path, environ: dict[str, str], visible: bool) -> None:
    (tmp_path / "nvidia0").touch()
    (tmp_path / "nvidiactl").touch()
    assert gpu_visible(tmp_path, environ) is visible


def test_no_device_node_no_gpu(tmp_path: Path) -> None:
    (tmp_path / "nvidiactl").touch()  # the control node alone is not a GPU
    assert gpu_visible(tmp_path, {}) is False
