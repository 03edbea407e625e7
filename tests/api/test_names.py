"""Names derived from a pipeline: every one is valid for its kind whenever `validate` accepts
the pipeline's name, and `render` never fails on a name `validate` accepted."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from inferline.api import names
from inferline.api.crd import all_crds
from inferline.api.load import load_text
from inferline.compile import check_loaded, render_manifest

from ..conftest import EXAMPLES

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _kube_name_ok(kind: str, name: str) -> bool:
    """As the apiserver checks the name of each kind: a Service's is a DNS-1035 label, the
    others' DNS subdomains."""
    if kind == "Service":
        return len(name) <= 63 and DNS1035_LABEL.match(name) is not None
    return len(name) <= 253 and DNS1123_SUBDOMAIN.match(name) is not None


names_st = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,70}[a-z0-9])?\Z")


@given(names_st)
def test_every_child_name_is_valid_when_the_pipeline_name_is(name: str) -> None:
    if not names.pipeline_name_ok(name):
        return
    for kind, child in names.kubernetes_names(name).items():
        assert _kube_name_ok(kind, child), (kind, child)
    (value,) = names.pipeline_labels(name).values()
    assert len(value) <= names.MAX_LABEL_VALUE
    # Room for a suffix: `<name>-<9 characters>` is still a Service name and a label value.
    assert _kube_name_ok("Service", f"{name}-{'x' * (names.SUFFIX_ROOM - 1)}")


def test_the_rule_is_tight() -> None:
    assert names.pipeline_name_ok("p" * names.MAX_PIPELINE_NAME)
    assert not names.pipeline_name_ok("p" * (names.MAX_PIPELINE_NAME + 1))
    assert not names.pipeline_name_ok("9lives")  # a Service name starts with a letter
    assert not names.pipeline_name_ok("has.dots")
    assert not names.pipeline_name_ok("ends-")
    # The longest accepted name leaves exactly SUFFIX_ROOM under 63.
    assert names.MAX_PIPELINE_NAME + names.SUFFIX_ROOM == names.MAX_LABEL_VALUE


def test_the_crd_carries_the_same_rule() -> None:
    crd = all_crds()["inferline.dev_inferencepipelines.yaml"]
    rules = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert {"rule": names.PIPELINE_NAME_RULE, "message": names.PIPELINE_NAME_MESSAGE} in rules


def _minimal(pipeline: str, step: str, served: str | None) -> str:
    text = (EXAMPLES / "minimal/pipeline.yaml").read_text()
    text = text.replace("  name: minimal", f"  name: {pipeline}")
    text = text.replace("- name: scale", f"- name: {step}")
    if served is not None:
        text = text.replace("spec:\n", f"spec:\n  servedName: {served!r}\n", 1)
    return text


TRITON_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@settings(max_examples=150, deadline=None)
@given(
    names_st,
    names_st,
    st.none() | st.from_regex(r"\A[A-Za-z0-9_.-]{1,20}\Z"),
)
def test_render_never_fails_on_names_validate_accepted(
    pipeline: str, step: str, served: str | None
) -> None:
    loaded = load_text(_minimal(pipeline, step, served), EXAMPLES / "minimal/pipeline.yaml")
    checked = check_loaded(loaded, require_refs=True)
    if not checked.ok:
        return
    manifest = render_manifest(checked.pipelines)  # must not raise
    (entry,) = manifest.pipelines
    assert entry.served_name == (served or pipeline)
    models = [entry.served_name, *(s.model for s in entry.steps)]
    assert len(set(models)) == len(models)
    assert all(TRITON_MODEL_NAME.match(m) for m in models), models
    assert [s.model for s in entry.steps] == [names.step_model(pipeline, step)]


def test_validate_names_the_rule_for_a_bad_pipeline_name() -> None:
    loaded = load_text(_minimal("9lives", "scale", None), Path("p.yaml"))
    (problem,) = loaded.problems
    assert problem.message == names.PIPELINE_NAME_MESSAGE
