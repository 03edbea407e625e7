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


def watched(dra: bool) -> set[str]:
    registry = kopf.OperatorRegistry()
    ctl: Any = SimpleNamespace(
        dra=dra,
        namespaced=False,
        state=ClusterState(node_view=lambda _: None),
        on_pipeline=lambda *_: set(),
        enqueue=lambda _: None,
    )
    handlers.register(registry, ctl)
    return {
        str(h.selector.any_name)
        for h in registry._watching.get_all_handlers()
        if h.selector is not None
    }


@pytest.mark.parametrize("dra", [True, False])
def test_dra_resources_are_watched_only_with_dra(dra: bool) -> None:
    plurals = watched(dra)
    assert {"inferencepipelines", "nodes", "pods", "deployments"} <= plurals
    assert (plurals >= DRA) if dra else not (DRA & plurals)
