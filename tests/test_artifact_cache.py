"""The artifact cache's pieces, and the credential-mount contract the operator renders from."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from inferline.api.model import StorageOptions
from inferline.errors import UserError
from inferline.render import mounts
from inferline.runtime.cache import ArtifactCache, materialize, parse_size
from inferline.runtime.credentials import CredentialSource
from inferline.runtime.stores import locate


@pytest.mark.parametrize(
    ("text", "size"),
    [("123", 123), ("500M", 500 * 10**6), ("20Gi", 20 * 2**30), ("1.5G", 1_500_000_000)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_says_what_it_wants() -> None:
    with pytest.raises(ValueError, match=r"not a size: 'lots' \(e.g. 50Gi, 500M, 1000000\)"):
        parse_size("lots")


def blob(cache: ArtifactCache, name: str, size: int, age_s: float) -> None:
    partial = cache.partial(name)
    partial.write_bytes(b"x" * size)
    path = cache.insert(partial, name)
    t = path.stat().st_mtime - age_s
    os.utime(path, (t, t))


def test_eviction_drops_least_recently_used_first_and_spares_this_runs(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path, max_bytes=3000)
    blob(cache, "a" * 64, 1000, age_s=4000)  # oldest, but this run uses it
    blob(cache, "b" * 64, 1000, age_s=3000)
    blob(cache, "c" * 64, 1000, age_s=2000)
    blob(cache, "d" * 64, 1000, age_s=1000)
    blob(cache, "e" * 64, 1000, age_s=60)  # just inserted (by another replica, perhaps)
    assert cache.lookup("c" * 64) is not None  # a hit makes c the most recent
    cache.evict(keep={"a" * 64})
    left = sorted(p.name[0] for p in (tmp_path / "blobs" / "sha256").iterdir())
    assert left == ["a", "c", "e"]  # b and d went, oldest first; a is in use, c and e recent


def test_an_unwritable_cache_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"^artifact cache .*/file/cache: Not a directory$"):
        ArtifactCache(tmp_path / "file" / "cache")


def test_no_cap_keeps_everything(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    blob(cache, "a" * 64, 10_000, age_s=1000)
    cache.evict(keep=set())
    assert cache.lookup("a" * 64) is not None


def test_a_blob_of_the_wrong_size_is_a_miss_and_goes(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    blob(cache, "a" * 64, 10, age_s=0)
    assert cache.lookup("a" * 64, size=11) is None
    assert not cache.blob("a" * 64).exists()


def test_blobs_are_read_only_and_copied_across_filesystems(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    blob(cache, "a" * 64, 10, age_s=0)
    assert cache.blob("a" * 64).stat().st_mode & 0o222 == 0
    materialize(cache.blob("a" * 64), tmp_path / "repo" / "same-fs")
    assert (tmp_path / "repo" / "same-fs").stat().st_ino == cache.blob("a" * 64).stat().st_ino
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:  # tmpfs: another filesystem
        materialize(cache.blob("a" * 64), Path(other) / "copy")
        assert (Path(other) / "copy").read_bytes() == b"x" * 10
        assert (Path(other) / "copy").stat().st_ino != cache.blob("a" * 64).stat().st_ino


# ---- the credential-mount contract ------------------------------------------------------------


def test_secret_volume_names_are_dns_labels() -> None:
    assert mounts.secret_volume_name("s3-reader") == "secret-s3-reader"
    long = "team.models." + "x" * 240
    for name in (long, "a.b", "UPPER"):
        vol = mounts.secret_volume_name(name)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", vol), vol
    assert mounts.secret_volume_name(long) != mounts.secret_volume_name(long + "y")
    assert mounts.secret_mount_path("s3-reader") == "/var/run/inferline/secrets/s3-reader"


def test_secrets_are_read_as_the_kubelet_mounts_them(tmp_path: Path) -> None:
    d = tmp_path / "s3-reader"
    data = d / "..2026_01_01_00_00_00.1"
    data.mkdir(parents=True)
    (d / "..data").symlink_to(data.name)
    (data / "AWS_ACCESS_KEY_ID").write_text("AKIA\n")
    (d / "AWS_ACCESS_KEY_ID").symlink_to("..data/AWS_ACCESS_KEY_ID")
    secret = CredentialSource(tmp_path, ambient=False).secret("s3-reader")
    assert list(secret.data) == ["AWS_ACCESS_KEY_ID"]  # the kubelet's dot entries skipped
    assert secret.get("AWS_ACCESS_KEY_ID") == "AKIA"
    assert "AKIA" not in repr(secret)  # never in logs


def test_in_a_pod_ambient_cloud_credentials_do_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    options = StorageOptions()
    pod = locate("s3://b/k", None, options, CredentialSource(tmp_path, ambient=False))
    assert str(pod.store.config.get("skip_signature")).lower() == "true"  # anonymous
    local = locate("s3://b/k", None, options, CredentialSource(tmp_path, ambient=True))
    assert str(local.store.config.get("skip_signature", "false")).lower() == "false"
