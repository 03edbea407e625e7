"""What the operator watches: DRA objects only when it places through DRA (the chart grants the
RBAC for resource.k8s.io only then)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from inferline.controller import handlers
from inferline.controller.state import ClusterState

DRA = {"resourceslices", "deviceclasses", "resourceclaims", "resourceclaimtemplates"}


def registered(dra: bool) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    ctl: Any = SimpleNamespace(
        dra=dra,
        namespaced=False,
        state=ClusterState(node_view=lambda _: None),
        on_pipeline=lambda *_: set(),
        enqueue=lambda _: None,
    )
    handlers.register(registry, ctl)
    return registry


def watched(dra: bool) -> set[str]:
    return {
        str(h.selector.any_name)
        for h in registered(dra)._watching.get_all_handlers()
        if h.selector is not None
    }


@pytest.mark.parametrize("dra", [True, False])
def test_dra_resources_are_watched_only_with_dra(dra: bool) -> None:
    plurals = watched(dra)
    assert {"inferencepipelines", "nodes", "pods", "deployments"} <= plurals
    assert (plurals >= DRA) if dra else not (DRA & plurals)


def test_only_event_handlers_so_kopf_needs_no_diff_base() -> None:
    # handlers.NoDiffBase skips kopf's per-event copy of the body, which only change-detecting
    # and daemon handlers read: there must be none.
    registry = registered(dra=True)
    assert list(registry._watching.get_all_handlers())
    assert not list(registry._changing.get_all_handlers())
    assert not list(registry._spawning.get_all_handlers())
