"""The generated CRDs: fresh, structural, accepted by Kubernetes' own CRD schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from inferline.api.crd import all_crds
from inferline.yamlio import dump_yaml

from .conftest import EXAMPLES, REPO

CRD_DIR = REPO / "crds"


def test_crds_dir_is_what_the_generator_writes() -> None:
    generated = all_crds()
    on_disk = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert set(on_disk) == set(generated), "run `inferline crds -o crds`"
    for name, crd in generated.items():
        assert on_disk[name] == dump_yaml(crd), f"{name} is stale: run `inferline crds -o crds`"


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_crd_passes_kubernetes_schema(name: str) -> None:
    crd = all_crds()[name]
    kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)


# What each kind must be; kubernetes-validate cannot know (either scope is a valid CRD).
SCOPES = {
    "Backend": "Namespaced",
    "ClusterBackend": "Cluster",
    "Model": "Namespaced",
    "InferencePipeline": "Namespaced",
}


def test_each_kind_has_its_scope() -> None:
    scopes = {c["spec"]["names"]["kind"]: c["spec"]["scope"] for c in all_crds().values()}
    assert scopes == SCOPES


def _list_types(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if "x-kubernetes-list-type" in node:
            found.append((path, node))
        for k, v in node.get("properties", {}).items():
            found += _list_types(v, f"{path}.{k}")
        for k in ("items", "additionalProperties"):
            found += _list_types(node.get(k), f"{path}[]" if k == "items" else f"{path}{{}}")
    return found


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_list_types_are_what_the_apiserver_accepts(name: str) -> None:
    # The apiserver rejects an unknown list type, and a map whose keys are not required
    # properties of its items (kubernetes-validate checks neither).
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _list_types(schema, ""):
        assert node["type"] == "array", path
        assert node["x-kubernetes-list-type"] in ("atomic", "set", "map"), path
        if node["x-kubernetes-list-type"] == "map":
            keys = node["x-kubernetes-list-map-keys"]
            items = node["items"]
            assert keys and set(keys) <= set(items.get("required", [])), path
            assert all(items["properties"][k]["type"] in ("string", "integer") for k in keys)


def test_the_lists_users_key_by_name_are_maps() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in all_crds().values()}
    schema = crds["InferencePipeline"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found = {path: node.get("x-kubernetes-list-map-keys") for path, node in _list_types(schema, "")}
    assert found[".spec.steps"] == ["name"]
    assert found[".spec.inputs"] == ["name"]
    assert found[".status.conditions"] == ["type"]  # two writers apply their own conditions


def _walk(node: Any, path: str) -> list[str]:
    """Violations of the structural-schema rules the apiserver enforces."""
    bad = []
    if not isinstance(node, dict):
        return bad
    for key in ("$ref", "anyOf", "oneOf", "allOf", "not", "definitions", "$defs"):
        if key in node:
            bad.append(f"{path}: has {key}")
    if node.get("additionalProperties") is False:
        bad.append(f"{path}: additionalProperties: false")
    if "properties" in node and "additionalProperties" in node:
        bad.append(f"{path}: properties and additionalProperties together")
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        bad.append(f"{path}: no type")
    for k, v in node.get("properties", {}).items():
        bad += _walk(v, f"{path}.{k}")
    for k in ("items", "additionalProperties"):
        if isinstance(node.get(k), dict):
            bad += _walk(node[k], f"{path}.{k}")
    return bad


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_crd_schema_is_structural(name: str) -> None:
    crd = all_crds()[name]
    for v in crd["spec"]["versions"]:
        assert _walk(v["schema"]["openAPIV3Schema"], "") == []


def test_pipeline_crd_has_subresources_columns_and_rules() -> None:
    crd = all_crds()["inferline.dev_inferencepipelines.yaml"]
    v = crd["spec"]["versions"][0]
    assert v["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert v["subresources"]["status"] == {}
    assert [c["name"] for c in v["additionalPrinterColumns"]][:4] == [
        "Ready",
        "Replicas",
        "Device",
        "GPU",
    ]
    assert crd["spec"]["names"]["categories"] == ["inferline"]
    spec = v["schema"]["openAPIV3Schema"]["properties"]["spec"]
    steps = spec["properties"]["steps"]
    assert steps["x-kubernetes-list-map-keys"] == ["name"]
    assert any("modelRef" in r["rule"] for r in steps["items"]["x-kubernetes-validations"])
    auto = spec["properties"]["autoscaling"]
    assert auto["x-kubernetes-validations"][0]["rule"] == "self.minReplicas <= self.maxReplicas"
    assert spec["properties"]["placement"]["properties"]["device"]["enum"] == ["GPU", "CPU"]


def _example_objects() -> list[dict[str, Any]]:
    objs = []
    for f in sorted(EXAMPLES.rglob("*.yaml")):
        objs += [
            d
            for d in yaml.safe_load_all(f.read_text())
            if d and str(d.get("apiVersion", "")).startswith("inferline.dev/")
        ]
    return objs


@pytest.mark.parametrize(
    "obj", _example_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}"
)
def test_examples_match_the_crd_openapi_schema(obj: dict[str, Any]) -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in all_crds().values()}
    schema = crds[obj["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # OpenAPI 3.0 schemas are JSON Schema draft 4 in this respect (boolean exclusiveMinimum).
    jsonschema.Draft4Validator(schema).validate(obj)


def test_unknown_field_is_not_in_schema() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in all_crds().values()}
    spec = crds["Model"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "formats" not in spec["properties"] and "format" in spec["properties"]


def test_generator_is_deterministic(tmp_path: Path) -> None:
    assert {k: dump_yaml(v) for k, v in all_crds().items()} == {
        k: dump_yaml(v) for k, v in all_crds().items()
    }


def test_reference_doc_is_fresh() -> None:
    from inferline.api.reference import reference

    on_disk = (REPO / "docs" / "reference.md").read_text()
    assert on_disk == reference(), "run `python -m inferline.api.reference > docs/reference.md`"
