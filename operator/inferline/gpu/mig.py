"""Known MIG profiles per GPU product: the one table the API, placement and status read.

Profiles and per-GPU instance limits are from NVIDIA's MIG user guide ("Supported MIG
Profiles"). Product names are matched against what GPU Feature Discovery writes into the
`nvidia.com/gpu.product` label (e.g. `NVIDIA-A100-SXM4-80GB`, `NVIDIA-H100-80GB-HBM3`), or a
short family name (`A100-80GB`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

MIG_PROFILE_PATTERN = r"^[1-7]g\.[0-9]+gb(\+me)?$"


@dataclass(frozen=True)
class MigProfile:
    name: str  # e.g. "1g.10gb"
    compute_slices: int
    memory_gb: int
    max_per_gpu: int

    @property
    def resource_name(self) -> str:
        """The extended resource the device plugin exposes under the MIG "mixed" strategy."""
        return resource_name(self.name)


@dataclass(frozen=True)
class GpuFamily:
    name: str  # short family name, e.g. "A100-80GB"
    memory_gb: int
    # Each regex must match one whole '-'-separated token of GFD's nvidia.com/gpu.product (so
    # "H200" matches NVIDIA-H200 but not NVIDIA-GH200-480GB).
    product_tokens: tuple[str, ...]
    profiles: tuple[MigProfile, ...]

    def matches(self, product: str) -> bool:
        tokens = product.split("-")
        return all(
            any(re.fullmatch(t, tok, flags=re.IGNORECASE) for tok in tokens)
            for t in self.product_tokens
        )

    def profile(self, name: str) -> MigProfile | None:
        return next((p for p in self.profiles if p.name == name), None)


def _profiles(*rows: tuple[str, int]) -> tuple[MigProfile, ...]:
    out = []
    for name, max_per_gpu in rows:
        m = re.match(r"^(\d)g\.(\d+)gb", name)
        assert m, name
        out.append(MigProfile(name, int(m.group(1)), int(m.group(2)), max_per_gpu))
    return tuple(out)


def _seven_slice(one: int, two: int, half: int, full: int) -> tuple[MigProfile, ...]:
    """The profile ladder every 7-slice GPU (A100, H100, H200) offers, by its memory sizes."""
    return _profiles(
        (f"1g.{one}gb", 7),
        (f"1g.{one}gb+me", 1),
        (f"1g.{two}gb", 4),
        (f"2g.{two}gb", 3),
        (f"3g.{half}gb", 2),
        (f"4g.{half}gb", 1),
        (f"7g.{full}gb", 1),
    )


GPU_FAMILIES: tuple[GpuFamily, ...] = (
    GpuFamily(
        "A30",
        24,
        ("A30",),
        _profiles(
            ("1g.6gb", 4), ("1g.6gb+me", 1), ("2g.12gb", 2), ("2g.12gb+me", 1), ("4g.24gb", 1)
        ),
    ),
    GpuFamily("A100-40GB", 40, ("A100", "40GB"), _seven_slice(5, 10, 20, 40)),
    GpuFamily("A100-80GB", 80, ("A100", "80GB"), _seven_slice(10, 20, 40, 80)),
    GpuFamily("H100-94GB", 94, ("H100", "94GB|NVL"), _seven_slice(12, 24, 47, 94)),
    GpuFamily("H100-80GB", 80, ("H100",), _seven_slice(10, 20, 40, 80)),
    GpuFamily("H200-141GB", 141, ("H200",), _seven_slice(18, 35, 71, 141)),
)


def family_for_product(product: str) -> GpuFamily | None:
    """The family a product label or short name belongs to, or None if unknown.

    Families are tried in table order, so the more specific H100 NVL/94GB pattern wins.
    """
    for family in GPU_FAMILIES:
        if product == family.name:
            return family
    # Single-strategy MIG nodes carry e.g. "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb": drop the suffix.
    base = re.sub(r"-MIG-.*$", "", product)
    return next((f for f in GPU_FAMILIES if f.matches(base)), None)


def known_profile_names() -> list[str]:
    return sorted({p.name for f in GPU_FAMILIES for p in f.profiles}, key=_profile_sort_key)


def families_with_profile(name: str) -> list[GpuFamily]:
    return [f for f in GPU_FAMILIES if f.profile(name) is not None]


def smallest_profile_for_memory(family: GpuFamily, memory_gb: float) -> MigProfile | None:
    """The profile with the least memory (then fewest compute slices) that holds memory_gb."""
    fits = [p for p in family.profiles if p.memory_gb >= memory_gb and not p.name.endswith("+me")]
    return min(fits, key=lambda p: (p.memory_gb, p.compute_slices), default=None)


def resource_name(profile: str) -> str:
    """`nvidia.com/mig-<profile>`: the device plugin spells a profile's "+" as "." (resource
    names allow no "+"), so the media-extension 1g.10gb+me is `nvidia.com/mig-1g.10gb.me`."""
    return f"nvidia.com/mig-{profile.replace('+', '.')}"


def profile_from_resource_suffix(suffix: str) -> str:
    """The profile a `nvidia.com/mig-<suffix>` resource serves (the inverse of resource_name)."""
    return re.sub(r"\.me$", "+me", suffix)


def profile_memory_gb(name: str) -> int | None:
    """The memory a profile's name states (NVIDIA names them in GB): 10 for 1g.10gb."""
    m = re.match(r"^\d+g\.(\d+)gb", name)
    return int(m.group(1)) if m else None


@functools.cache  # placement sorts thousands of offers of a handful of profiles
def profile_size_key(name: str) -> tuple[int, int, str]:
    """Orders profiles smallest first: by memory, then compute slices; +me after its twin."""
    m = re.match(r"^(\d+)g\.(\d+)gb", name)
    return (int(m.group(2)), int(m.group(1)), name) if m else (10**6, 0, name)


def _profile_sort_key(name: str) -> tuple[int, int, str]:
    m = re.match(r"^(\d)g\.(\d+)gb", name)
    return (int(m.group(1)), int(m.group(2)), name) if m else (99, 0, name)
