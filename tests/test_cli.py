"""The CLI as a user meets it: exit codes, one line per problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferline import __version__

from .conftest import EXAMPLES, INVALID, REPO, expected_message, run_cli

BROKEN = sorted(INVALID.glob("*.yaml"))


def test_examples_validate() -> None:
    r = run_cli("validate", str(EXAMPLES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid:" in r.stdout
    assert "4 pipelines checked" in r.stdout
    assert "(1 object of other APIs not checked)" in r.stdout  # the cluster example's ConfigMap


def test_broken_corpus_covers_the_required_cases() -> None:
    names = {p.stem for p in BROKEN}
    required = {
        "cycle",
        "dangling-tensor",
        "dtype-mismatch",
        "duplicate-step",
        "unknown-field",
        "bad-mig-profile",
        "min-above-max",
        "malformed",
    }
    assert required <= names


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_manifest_fails_with_one_clear_line(path: Path) -> None:
    r = run_cli("validate", str(path))
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if not line.startswith("invalid:")]
    assert len(errors) == 1, r.stderr
    assert expected_message(path) in errors[0]
    assert errors[0].startswith(str(path)), "each problem names its file"
    assert r.stderr.splitlines()[-1] == "invalid: 1 problem"


def test_all_broken_at_once_reports_each(tmp_path: Path) -> None:
    r = run_cli("validate", *map(str, BROKEN))
    assert r.returncode == 1
    for p in BROKEN:
        assert expected_message(p) in r.stderr


def test_missing_file_is_a_clear_error() -> None:
    r = run_cli("validate", "no/such/file.yaml")
    assert r.returncode == 1
    assert "no/such/file.yaml: no such file or directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_not_a_mapping_and_wrong_kind(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(
        "- a\n- b\n---\napiVersion: inferline.dev/v1alpha1\nkind: Pipeline\n"
        "metadata: {name: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n"
    )
    r = run_cli("validate", str(f))
    assert r.returncode == 1
    assert "expected a mapping (a Kubernetes object), got a list" in r.stderr
    assert "unknown kind 'Pipeline'" in r.stderr
    # A ConfigMap beside a pipeline is Kubernetes' to check, not ours...
    assert "ConfigMap" not in r.stderr
    # ...but a misspelt version of ours is a mistake.
    f.write_text("apiVersion: inferline.dev/v1\nkind: Model\nmetadata: {name: x}\n")
    r = run_cli("validate", str(f))
    assert r.returncode == 1
    assert "apiVersion must be inferline.dev/v1alpha1, got 'inferline.dev/v1'" in r.stderr


def test_version_and_help() -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"inferline {__version__}"
    for cmd in ([], ["validate"], ["render"], ["crds"], ["serve"], ["infer"]):
        r = run_cli(*cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        assert "Usage:" in r.stdout


def test_crds_to_stdout_matches_files(repo: Path) -> None:
    r = run_cli("crds")
    assert r.returncode == 0
    combined = "".join(f"---\n{p.read_text()}" for p in sorted((repo / "crds").glob("*.yaml")))
    assert r.stdout == combined


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = run_cli("render", str(EXAMPLES / "minimal"), "-o", str(blocker / "out"))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("error: Not a directory") or "File exists" in r.stderr, r.stderr


def test_render_names_the_missing_model(tmp_path: Path) -> None:
    # Regression: a missing Model made render say "no InferencePipeline to render".
    f = tmp_path / "p.yaml"
    f.write_text(
        (EXAMPLES / "minimal" / "pipeline.yaml")
        .read_text()
        .replace(
            "      model:\n        format: python\n        python: {file: scale.py}\n"
            '        maxBatchSize: 8\n        parameters: {factor: "2.0"}\n'
            "        inputs:\n          - {name: INPUT, dtype: FP32, dims: [-1]}\n"
            "        outputs:\n          - {name: OUTPUT, dtype: FP32, dims: [-1]}\n",
            "      modelRef: {name: scaler}\n",
        )
    )
    assert "modelRef: {name: scaler}" in f.read_text()
    r = run_cli("render", str(f), "-o", str(tmp_path / "out"))
    assert r.returncode == 1
    assert "spec.steps[0].modelRef.name: Model 'scaler' not found" in r.stderr
    assert "no InferencePipeline" not in r.stderr
    # validate checks a pipeline file on its own: the same thing is a warning there.
    r = run_cli("validate", str(f))
    assert r.returncode == 0 and "warning: spec.steps[0].modelRef.name" in r.stdout


@pytest.mark.parametrize("value", ["Y", "y", "N", "n"])
def test_bare_yaml11_booleans_are_errors(tmp_path: Path, value: str) -> None:
    # kubectl reads these as booleans (YAML 1.1); PyYAML as strings. validate must say so.
    f = tmp_path / "p.yaml"
    f.write_text((EXAMPLES / "minimal" / "pipeline.yaml").read_text().replace('"Y"', value))
    r = run_cli("validate", str(f))
    assert r.returncode == 1
    assert f"a bare {value} is the boolean" in r.stderr and f'quote it: "{value}"' in r.stderr


def test_the_benchmark_manifests_validate() -> None:
    """bench/dataplane's Models and every layout it serves (run on a GPU machine, so a
    manifest broken here would only show there)."""
    pipeline = REPO / "bench" / "dataplane" / "pipeline"
    layouts = ["all-gpu.yaml", "all-gpu-onepre.yaml", "models-gpu.yaml", "all-cpu.yaml"]
    r = run_cli("validate", str(pipeline / "models.yaml"), *(str(pipeline / f) for f in layouts))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 pipelines checked" in r.stdout
