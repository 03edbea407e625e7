"""Build the pinned control-plane binaries for the e2e cluster, cached outside the repository.

`python -m e2e.build` prints the bin dir. The pins are the go.mod/go.sum files under
e2e/toolchain/: the cache key hashes them (plus this recipe and the Go version), so binaries are
rebuilt only when a pin changes. Go's own module and build caches (GOMODCACHE, GOCACHE) are left
at their defaults so a rebuild after a pin bump recompiles only what changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TOOLCHAIN = Path(__file__).resolve().parent / "toolchain"
# Bump when the recipe below changes in a way the go.mod files don't show (flags, tags).
RECIPE = "4"
GO_TAGS = "selinux,notest,grpcnotrace"


class BuildError(RuntimeError):
    """The binaries could not be built; the message carries the failing command's output."""


@dataclass(frozen=True)
class Target:
    """One Go module under toolchain/ (named after the tool it pins) and the commands it builds."""

    module: str
    # binary name -> Go package of the command
    commands: dict[str, str]

    @property
    def dir(self) -> Path:
        return TOOLCHAIN / self.module

    @property
    def binaries(self) -> list[str]:
        return list(self.commands)


TARGETS = (
    Target(
        "kubernetes",
        {
            c: f"k8s.io/kubernetes/cmd/{c}"
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        },
    ),
    Target("etcd", {"etcd": "go.etcd.io/etcd/server/v3"}),
    Target("kwok", {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
    Target("helm", {"helm": "helm.sh/helm/v3/cmd/helm"}),
)
BINARIES = tuple(b for t in TARGETS for b in t.binaries)


def pinned_version(target: Target) -> str:
    """The version of the tool's module that `target`'s go.mod requires."""
    module = next(iter(target.commands.values())).split("/cmd/")[0]  # etcd's is its module
    for line in (target.dir / "go.mod").read_text().splitlines():
        words = line.split()
        if words[:1] == ["require"]:
            words = words[1:]
        if len(words) >= 2 and words[0] == module:
            return words[1]
    raise BuildError(f"{target.dir}/go.mod does not require {module}")


def cache_root() -> Path:
    default = Path.home() / ".cache" / "inferline-e2e"
    return Path(os.environ.get("INFERLINE_E2E_CACHE", default)).expanduser()


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries; never let go.mod's `go` line download another toolchain; never let a
    # build rewrite go.sum: the pins are what was reviewed.
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly -buildvcs=false")
    return env


def _run(cmd: list[str], cwd: Path, *, nice: bool = False) -> str:
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=_go_env(),
            capture_output=True,
            text=True,
            check=False,
            # The build shares two cores with everything else on a dev box.
            preexec_fn=(lambda: os.nice(10)) if nice else None,
        )
    except FileNotFoundError as e:
        raise BuildError(f"{cmd[0]} not found: the e2e binaries are built with Go >= 1.25") from e
    if proc.returncode != 0:
        raise BuildError(
            f"{' '.join(cmd)} (in {cwd}) failed with {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def cache_key() -> str:
    """Hash of everything that decides the bytes of the binaries."""
    h = hashlib.sha256(f"recipe={RECIPE} tags={GO_TAGS}\n".encode())
    h.update(_run(["go", "env", "GOVERSION", "GOOS", "GOARCH"], TOOLCHAIN).encode())
    for t in TARGETS:
        for name in ("go.mod", "go.sum"):
            h.update(f"{t.module}/{name}\n".encode())
            h.update((t.dir / name).read_bytes())
    return h.hexdigest()[:16]


def _module_info(target: Target, module: str) -> dict[str, str]:
    # `go list -m` answers from the module cache (after download), so the stamped date is the
    # pinned release's date, not the build's: two builds of the same pins are identical.
    out = _run(["go", "list", "-m", "-json", module], target.dir)
    info: dict[str, str] = json.loads(out)
    if "Replace" in info:
        info = dict(info, **{"Version": info["Replace"]["Version"]})  # type: ignore[index]
    return info


def _ldflags(target: Target) -> list[str]:
    flags: dict[str, str] = {}
    if target.module == "kubernetes":
        info = _module_info(target, "k8s.io/kubernetes")
        version = info["Version"]
        major, minor = version.lstrip("v").split(".")[:2]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags |= {
                f"{pkg}.gitVersion": version,
                f"{pkg}.gitMajor": major,
                f"{pkg}.gitMinor": minor,
                f"{pkg}.gitTreeState": "clean",
                # The proxy doesn't say which commit a tag is; "" beats the "$Format:%H$" default.
                f"{pkg}.gitCommit": "",
                f"{pkg}.buildDate": info["Time"],
            }
    elif target.module == "kwok":
        flags["sigs.k8s.io/kwok/pkg/consts.Version"] = _module_info(target, "sigs.k8s.io/kwok")[
            "Version"
        ]
    elif target.module == "helm":
        flags["helm.sh/helm/v3/internal/version.version"] = _module_info(target, "helm.sh/helm/v3")[
            "Version"
        ]
        flags["helm.sh/helm/v3/internal/version.gitTreeState"] = "clean"
        # Helm derives the Kubernetes version it assumes for `helm template`/lint from
        # client-go (v0.X -> 1.X), as its Makefile does.
        client_minor = _module_info(target, "k8s.io/client-go")["Version"].split(".")[1]
        for pkg in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
            flags |= {f"{pkg}.k8sVersionMajor": "1", f"{pkg}.k8sVersionMinor": client_minor}
    return ["-s", "-w", *(f"-X {k}={v}" for k, v in sorted(flags.items()))]


def _build_target(target: Target, out: Path, log: list[str]) -> None:
    _run(["go", "mod", "download"], target.dir)
    start = time.monotonic()
    base = [
        "go",
        "build",
        "-trimpath",
        f"-tags={GO_TAGS}",
        f"-ldflags={' '.join(_ldflags(target))}",
    ]
    if len(target.commands) == 1:
        # -o names the file: etcd's command path would otherwise make it "server".
        [(name, package)] = target.commands.items()
        _run([*base, "-o", str(out / name), package], target.dir, nice=True)
    else:
        # One invocation shares the compilation of common packages between the commands.
        _run([*base, "-o", f"{out}/", *target.commands.values()], target.dir, nice=True)
    log.append(f"{target.module}: {time.monotonic() - start:.0f}s")


def bin_dir() -> Path:
    """The bin dir for the current pins (it may not be built yet)."""
    return cache_root() / cache_key() / "bin"


def is_built(bins: Path) -> bool:
    return all((bins / b).is_file() for b in BINARIES)


def ensure_built(*, quiet: bool = False) -> Path:
    """Build the binaries unless the cache has them; return the bin dir. Raises BuildError."""
    bins = bin_dir()
    if is_built(bins):
        return bins
    bins.parent.mkdir(parents=True, exist_ok=True)
    # A lock so two concurrent test sessions don't both spend 20 minutes building.
    with open(bins.parent / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(bins):
            return bins
        staging = bins.parent / "bin.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        log: list[str] = []
        for target in TARGETS:
            if not quiet:
                print(f"e2e.build: building {', '.join(target.binaries)} ...", file=sys.stderr)
            _build_target(target, staging, log)
        missing = [b for b in BINARIES if not (staging / b).is_file()]
        if missing:
            raise BuildError(f"go build succeeded but did not produce {missing}")
        # Rename last: a killed build never leaves a bin dir that looks complete.
        staging.rename(bins)
        (bins.parent / "build-times.txt").write_text("\n".join(log) + "\n")
    _prune(keep=3)
    return bins


def _prune(keep: int) -> None:
    """Delete all but the `keep` newest builds (~450 MB each) of older pins."""
    builds = [p for p in cache_root().iterdir() if len(p.name) == 16 and (p / "bin").is_dir()]
    builds.sort(key=lambda p: (p / "bin").stat().st_mtime, reverse=True)
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    start = time.monotonic()
    try:
        bins = ensure_built()
    except BuildError as e:
        print(f"e2e.build: FAILED\n{e}", file=sys.stderr)
        return 1
    print(f"e2e.build: ready in {time.monotonic() - start:.1f}s", file=sys.stderr)
    print(bins)
    return 0


if __name__ == "__main__":
    sys.exit(main())
