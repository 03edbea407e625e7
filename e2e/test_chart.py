"""The Helm chart on the real control plane, with the helm the e2e toolchain builds.

`helm install` creates the CRDs, the operator's Deployment (kwok runs its pod: what is tested
there is admission, in a namespace that enforces the restricted Pod Security Standard), its
ServiceAccount and RBAC. The operator itself runs as a process here, with the arguments the
chart's Deployment gives it and the credentials of the chart's ServiceAccount (a token from the
TokenRequest API): a pipeline it reconciles to Ready proves the RBAC sufficient, and what the
chart does not grant is refused by the apiserver. Then `helm upgrade` and `helm uninstall`.

The session's cluster is shared: the releases, their namespaces and their cluster-scoped objects
are this module's own and are removed at its end, and the CRDs are put back as the `crds`
fixture left them (this module deletes them first, so that `helm install` is what creates them).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster
from e2e.helm import CHART, Helm
from e2e.operator import OperatorProcess
from e2e.pipelines import REPO, apply, example, get, pods, wait_condition
from e2e.plugin import CRD_DIR
from e2e.tokens import service_account_kubeconfig
from e2e.workloads import Kubectl, get_json, wait_for

pytestmark = pytest.mark.e2e

CRD_NAMES = sorted(
    d["metadata"]["name"] for f in CRD_DIR.glob("*.yaml") for d in yaml.safe_load_all(f.read_text())
)
CRD_SELECTOR = "app.kubernetes.io/part-of=inferline"  # the documented switch selects by it
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
# What the by-hand operator replaces from the chart's args: its ports must be free ones here.
LOCAL_FLAGS = ("--metrics-port", "--health-port", "--bind-address")


@dataclass
class Release:
    name: str
    namespace: str
    helm: Helm
    notes: str = ""  # what `helm install` printed after NOTES:

    @property
    def fullname(self) -> str:
        return f"{self.name}-inferline"

    @property
    def service_account(self) -> str:
        return self.fullname

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def operator_pod(self, kubectl: Kubectl, timeout: float = 60) -> dict[str, Any]:
        """The operator's one pod, once it runs (admitted, scheduled, started by kwok)."""

        def running() -> dict[str, Any] | None:
            found = get_json(
                kubectl, "pods", "-n", self.namespace, "-l", "app.kubernetes.io/component=operator"
            )["items"]
            live = [p for p in found if not p["metadata"].get("deletionTimestamp")]
            if len(live) == 1 and live[0]["status"].get("phase") == "Running":
                return dict(live[0])
            return None

        return wait_for(running, f"the operator pod of {self.name} to run", timeout)

    def operator_args(self, kubectl: Kubectl) -> list[str]:
        """The operator container's args, as the installed Deployment has them."""
        deploy = get_json(kubectl, "deployment", self.fullname, "-n", self.namespace)
        args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        return [a for a in args if not a.startswith(LOCAL_FLAGS)]


def _suffix() -> str:
    return uuid.uuid4().hex[:6]


def _create_namespace(kubectl: Kubectl, name: str, labels: dict[str, str]) -> None:
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    proc = kubectl("apply", "--server-side", "-f", "-", input=json.dumps(doc))
    assert proc.returncode == 0, proc.stderr
    proc = kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    assert proc.returncode == 0, proc.stderr


def _delete_crds(kubectl: Kubectl) -> None:
    proc = kubectl("delete", "crd", "-l", CRD_SELECTOR, "--ignore-not-found", "--timeout=120s")
    assert proc.returncode == 0, proc.stderr
    # Objects of the kinds made by hand (not by the chart or crds/) carry no label: name them.
    proc = kubectl("delete", "crd", *CRD_NAMES, "--ignore-not-found", "--timeout=120s")
    assert proc.returncode == 0, proc.stderr


def _restore_crds(kubectl: Kubectl) -> None:
    """Leave the CRDs as the session's `crds` fixture applies them."""
    for f in sorted(CRD_DIR.glob("*.yaml")):
        proc = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
        assert proc.returncode == 0, proc.stderr
    proc = kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES)
    )
    assert proc.returncode == 0, proc.stderr


class Scope:
    """What this module created, removed at its end whatever happened in between."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.helm = Helm(cluster)
        self.releases: list[Release] = []
        self.namespaces: list[str] = []
        self.operators: list[OperatorProcess] = []

    def namespace(self, prefix: str, labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{_suffix()}"
        _create_namespace(self.cluster.kubectl, name, labels or {})
        self.namespaces.append(name)
        return name

    def install(self, *args: str, restricted: bool = True) -> Release:
        ns = self.namespace("inferline-system", RESTRICTED if restricted else {})
        release = Release(f"chart-{_suffix()}", ns, self.helm)
        self.releases.append(release)
        # No --wait: kwok reports the pod Ready, but a node that misses a heartbeat on a busy
        # machine turns it NotReady for good; tests wait for what they need (operator_pod).
        out = self.helm.ok("install", release.name, str(CHART), "-n", ns, *args)
        release.notes = out.split("NOTES:", 1)[-1]
        return release

    def operator(self, release: Release, tmp: Path) -> OperatorProcess:
        """`inferline operator` with the chart's args and its ServiceAccount's token."""
        kubeconfig = service_account_kubeconfig(
            self.cluster, release.namespace, release.service_account, tmp / f"{release.name}.kc"
        )
        op = OperatorProcess(
            self.cluster, *release.operator_args(self.cluster.kubectl), kubeconfig=kubeconfig
        )
        self.operators.append(op)
        op.start()
        return op

    def close(self) -> None:
        kubectl = self.cluster.kubectl
        for op in self.operators:
            op.stop()
        for r in self.releases:
            self.helm("uninstall", r.name, "-n", r.namespace, "--wait", "--timeout=60s")
        for ns in self.namespaces:
            kubectl("delete", "namespace", ns, "--wait=false")
            kubectl("delete", "pods", "--all", "-n", ns, "--timeout=60s")
        _restore_crds(kubectl)


@pytest.fixture(scope="module")
def scope(cluster: Cluster) -> Iterator[Scope]:
    _delete_crds(cluster.kubectl)
    s = Scope(cluster)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def release(scope: Scope) -> Release:
    """The chart with its defaults (cluster-wide), in a namespace enforcing `restricted`."""
    return scope.install()


@pytest.fixture(scope="module")
def user_namespace(scope: Scope) -> str:
    return scope.namespace("user", RESTRICTED)


@pytest.fixture(scope="module")
def operator(
    scope: Scope, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> OperatorProcess:
    return scope.operator(release, tmp_path_factory.mktemp("sa"))


@pytest.fixture(scope="module")
def served(operator: OperatorProcess, user_namespace: str, kubectl: Kubectl) -> dict[str, Any]:
    """examples/cluster/minimal.yaml, reconciled to Ready by the chart-credentialed operator."""
    apply(kubectl, user_namespace, *example("minimal.yaml"))
    return wait_condition(kubectl, user_namespace, "minimal-cpu", "Ready", timeout=120)


# -- helpers --------------------------------------------------------------------------------------


def can_i(kubectl: Kubectl, subject: str, *args: str) -> bool:
    proc = kubectl("auth", "can-i", f"--as={subject}", *args)
    assert proc.stdout.strip() in ("yes", "no"), proc.stdout + proc.stderr
    return proc.stdout.strip() == "yes"


# The apiserver's RBAC refusals, the OwnerReferencesPermissionEnforcement admission's, and
# kopf's fallback when a listing is refused. (A 403 for a namespace being deleted, which other
# tests' leftovers may cause, is not a refusal of the operator's rights.)
REFUSAL = re.compile(
    r"cannot (get|list|watch|create|update|patch|delete) resource"
    r"|cannot set blockOwnerDeletion|Not enough permissions"
)


def refusals(op: OperatorProcess) -> list[str]:
    """Log lines where the apiserver refused the operator (or kopf) something."""
    return [line for line in op.log().splitlines() if REFUSAL.search(line)]


def metric(op: OperatorProcess, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$")
    total = 0.0
    for line in op.metrics().splitlines():
        m = pattern.match(line)
        if m and (not want or ",".join(sorted((m.group(1) or "").split(","))) == want):
            total += float(m.group(2))
    return total


def swept(op: OperatorProcess) -> bool | None:
    """The operator's first sweep is done: True when its listings passed, else it fails."""
    if metric(op, "inferline_sweep_total", result="error"):
        raise AssertionError(f"the sweep's listings failed:\n{op.log_tail(40)}")
    return True if metric(op, "inferline_sweep_total", result="ok") else None


def versions(kubectl: Kubectl, *what: str) -> dict[str, str]:
    """`Kind/namespace/name` -> the version of the spec of everything `kubectl get what` lists:
    metadata.generation where the kind has one (status updates, e.g. a pod turning NotReady on
    a busy machine, do not count), else resourceVersion."""
    out = {}
    for o in get_json(kubectl, *what)["items"]:
        meta = o["metadata"]
        key = f"{o['kind']}/{meta.get('namespace', '')}/{meta['name']}"
        out[key] = f"g{meta['generation']}" if "generation" in meta else meta["resourceVersion"]
    return out


def snapshot(kubectl: Kubectl, release: Release, user_ns: str) -> dict[str, str]:
    """resourceVersions of the CRDs, the release's objects and a user's pipeline and children."""
    label = f"app.kubernetes.io/instance={release.name}"
    return (
        versions(kubectl, "crd", "-l", CRD_SELECTOR)
        | versions(kubectl, "clusterbackends", "-l", label)
        | versions(kubectl, "clusterroles,clusterrolebindings", "-l", label)
        | versions(kubectl, "serviceaccounts,services,deployments", "-n", release.namespace)
        | versions(kubectl, "inferencepipelines,deployments,services,configmaps", "-n", user_ns)
    )


# -- install --------------------------------------------------------------------------------------


def test_install_creates_the_crds_the_backends_and_an_admitted_operator_pod(
    release: Release, kubectl: Kubectl
) -> None:
    assert release.helm.status(release.name, release.namespace)["info"]["status"] == "deployed"
    proc = kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES)
    )
    assert proc.returncode == 0, proc.stderr
    for name in CRD_NAMES:  # the chart's copies (with the Argo CD annotation), not crds/
        crd = get_json(kubectl, "crd", name)
        assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == (
            "Prune=false,Delete=false"
        )

    backends = {b["metadata"]["name"]: b for b in get_json(kubectl, "clusterbackends")["items"]}
    assert {"triton", "inferline-cpu"} <= set(backends)
    images = yaml.safe_load((CHART / "values.yaml").read_text())["builtinBackends"]["images"]
    assert {n: backends[n]["spec"]["image"] for n in images} == images

    # The operator's pod was admitted by the namespace's `restricted` Pod Security admission
    # (the apiserver decides; kwok then reports it running).
    ns = get_json(kubectl, "namespace", release.namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deploy = get_json(kubectl, "deployment", release.fullname, "-n", release.namespace)
    assert deploy["spec"]["strategy"]["type"] == "Recreate"
    pod = release.operator_pod(kubectl)
    assert pod["spec"]["serviceAccountName"] == release.service_account

    # ...and that admission is real: a pod that breaks the standard is refused there.
    root = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {}}]},
    }
    proc = kubectl("apply", "-n", release.namespace, "-f", "-", input=json.dumps(root))
    assert proc.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in proc.stderr, proc.stderr

    # A misspelt value fails the install, naming it, before anything is created.
    typo = release.helm(
        "install", "typo", str(CHART), "-n", release.namespace, "--set", "operator.worker=8"
    )
    assert typo.returncode != 0
    assert "at '/operator': additional properties 'worker' not allowed" in typo.stderr
    assert release.helm("status", "typo", "-n", release.namespace).returncode != 0


def test_the_notes_and_docs_say_what_this_module_does(release: Release) -> None:
    notes = release.notes
    assert f"kubectl -n {release.namespace} rollout status deployment/{release.fullname}" in notes
    assert "kubectl wait -n default --for=condition=Ready inferencepipeline/minimal-cpu" in notes
    assert "helm show crds" in notes
    for text in (notes, (REPO / "docs" / "crds.md").read_text()):
        assert f"kubectl delete crd -l {CRD_SELECTOR}" in text


# -- the operator with the chart's RBAC -----------------------------------------------------------


def test_the_operator_with_the_charts_service_account_serves_a_pipeline(
    release: Release,
    operator: OperatorProcess,
    served: dict[str, Any],
    user_namespace: str,
    kubectl: Kubectl,
) -> None:
    # The process really is the ServiceAccount.
    proc = kubectl(f"--kubeconfig={operator.kubeconfig}", "auth", "whoami", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"]["userInfo"]["username"] == release.subject

    assert served["status"]["readyReplicas"] == 2
    # The runtime pods passed the namespace's `restricted` admission (else the ReplicaSet could
    # not have created them).
    assert len(pods(kubectl, user_namespace, "minimal-cpu")) == 2

    # This operator did the work (another one may run in the session) and nothing was refused,
    # its sweep (a relist of everything it watches, 10 s after start) included.
    assert metric(operator, "inferline_apply_total", kind="Deployment") >= 1
    assert metric(operator, "inferline_reconcile_errors_total") == 0
    wait_for(lambda: swept(operator), "the operator's first sweep", 30)
    assert refusals(operator) == []


def test_what_the_chart_does_not_grant_is_refused(
    release: Release,
    operator: OperatorProcess,
    served: dict[str, Any],
    user_namespace: str,
    kubectl: Kubectl,
) -> None:
    sa, ns = release.subject, user_namespace
    granted = [
        ("patch", "deployments.apps", "-n", ns),
        ("create", "configmaps", "-n", ns),
        ("delete", "poddisruptionbudgets.policy", "-n", ns),
        ("patch", "inferencepipelines.inferline.dev", "--subresource=status", "-n", ns),
        ("update", "inferencepipelines.inferline.dev", "--subresource=finalizers", "-n", ns),
        # The built-in autoscaler, as an HPA would (the spec itself stays the user's).
        ("patch", "inferencepipelines.inferline.dev", "--subresource=scale", "-n", ns),
        ("create", "horizontalpodautoscalers.autoscaling", "-n", ns),
        ("watch", "pods", "-n", ns),
        ("create", "events", "-n", ns),
        ("list", "nodes"),
        ("watch", "clusterbackends.inferline.dev"),
    ]
    refused = [
        ("get", "secrets", "-n", ns),
        ("list", "secrets", "-A"),
        ("create", "pods", "-n", ns),
        ("delete", "inferencepipelines.inferline.dev", "-n", ns),
        ("patch", "inferencepipelines.inferline.dev", "-n", ns),  # the spec is the user's
        ("create", "clusterbackends.inferline.dev"),
        ("list", "resourceslices.resource.k8s.io"),  # dra.enabled is off by default
        ("patch", "nodes"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("*", "*", "-A"),
    ]
    assert [g for g in granted if not can_i(kubectl, sa, *g)] == []
    assert [r for r in refused if can_i(kubectl, sa, *r)] == []

    # Real requests with the operator's own token, refused by the apiserver.
    as_operator = ("--kubeconfig", str(operator.kubeconfig))
    proc = kubectl(*as_operator, "get", "secrets", "-n", ns)
    assert proc.returncode != 0
    assert f'User "{sa}" cannot list resource "secrets"' in proc.stderr, proc.stderr
    proc = kubectl(*as_operator, "delete", "inferencepipeline", "minimal-cpu", "-n", ns)
    assert proc.returncode != 0
    assert 'cannot delete resource "inferencepipelines"' in proc.stderr, proc.stderr
    assert get(kubectl, ns, "minimal-cpu")["metadata"].get("deletionTimestamp") is None


# -- upgrade --------------------------------------------------------------------------------------


def test_upgrade_rolls_what_changed_and_nothing_else(
    release: Release,
    operator: OperatorProcess,
    served: dict[str, Any],
    user_namespace: str,
    kubectl: Kubectl,
) -> None:
    wait_condition(kubectl, user_namespace, "minimal-cpu", "Ready")
    helm = release.helm
    upgrade = ("upgrade", release.name, str(CHART), "-n", release.namespace)

    # The documented CRD upgrade step works on CRDs helm created, and re-applying is harmless.
    crds = helm.ok("show", "crds", str(CHART))
    proc = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crds)
    assert proc.returncode == 0, proc.stderr
    applied = sorted(line.split()[0].split("/", 1)[1] for line in proc.stdout.splitlines())
    assert applied == CRD_NAMES, proc.stdout

    # Unchanged values: not a single object changes.
    before = snapshot(kubectl, release, user_namespace)
    helm.ok(*upgrade, "--reuse-values")
    assert snapshot(kubectl, release, user_namespace) == before

    # The operator's resources: its Deployment rolls (a new pod); nothing else changes.
    old_pod = release.operator_pod(kubectl)
    helm.ok(*upgrade, "--reuse-values", "--set", "resources.requests.cpu=200m")
    after = snapshot(kubectl, release, user_namespace)
    changed = sorted(k for k in after if after[k] != before.get(k))
    assert changed == [f"Deployment/{release.namespace}/{release.fullname}"]
    new_pod = wait_for(
        lambda: (
            p
            if (p := release.operator_pod(kubectl))["metadata"]["uid"] != old_pod["metadata"]["uid"]
            else None
        ),
        "the operator's new pod",
    )
    assert new_pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "200m"

    # A built-in backend's image: the ClusterBackend changes, and (through the operator) the
    # pipelines that use it roll; the operator itself does not.
    before = snapshot(kubectl, release, user_namespace)
    image = "registry.example.com/mirror/runtime-cpu:0.1.0"
    helm.ok(*upgrade, "--reuse-values", "--set", f"builtinBackends.images.inferline-cpu={image}")
    assert get_json(kubectl, "clusterbackend", "inferline-cpu")["spec"]["image"] == image

    def runtime_image() -> str | None:
        d = get_json(kubectl, "deployment", "minimal-cpu", "-n", user_namespace)
        found = d["spec"]["template"]["spec"]["containers"][0]["image"]
        return str(found) if found == image else None

    wait_for(runtime_image, "the pipeline's pods to roll to the new backend image", 60)
    after = snapshot(kubectl, release, user_namespace)
    assert (
        after[f"Deployment/{release.namespace}/{release.fullname}"]
        == (before[f"Deployment/{release.namespace}/{release.fullname}"])
    )
    assert all(after[k] == v for k, v in before.items() if k.startswith("CustomResourceDefinition"))
    assert refusals(operator) == []


# -- namespaced mode ------------------------------------------------------------------------------


def test_namespaced_mode_needs_no_cluster_wide_rights_but_node_and_backend_reads(
    scope: Scope, kubectl: Kubectl, tmp_path: Path
) -> None:
    team = scope.namespace("team", RESTRICTED)
    other = scope.namespace("other")
    # A second operator in the cluster leaves the built-in ClusterBackends to the first.
    r = scope.install(f"--set=watchNamespaces={{{team}}}", "--set=builtinBackends.enabled=false")
    sa = r.subject
    assert f"--namespace={team}" in r.operator_args(kubectl)
    r.operator_pod(kubectl)  # admitted under `restricted` too

    # Cluster-wide: only Node and ClusterBackend reads.
    assert can_i(kubectl, sa, "list", "nodes")
    assert can_i(kubectl, sa, "watch", "clusterbackends.inferline.dev")
    for verb, what in [
        ("list", "inferencepipelines.inferline.dev"),
        ("list", "pods"),
        ("list", "configmaps"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "namespaces"),
    ]:
        assert not can_i(kubectl, sa, verb, what, "-A"), (verb, what)
        assert not can_i(kubectl, sa, verb, what, "-n", other), (verb, what)
    assert can_i(kubectl, sa, "patch", "deployments.apps", "-n", team)
    assert not can_i(kubectl, sa, "patch", "deployments.apps", "-n", other)

    op = scope.operator(r, tmp_path)
    apply(kubectl, other, *example("minimal.yaml"))  # not watched: never reconciled by `op`
    apply(kubectl, team, *example("minimal.yaml"))
    wait_condition(kubectl, team, "minimal-cpu", "Ready", timeout=120)
    assert len(pods(kubectl, team, "minimal-cpu")) == 2  # admitted under `restricted`
    # It knows exactly one pipeline (the one in `team`), and nothing was refused: not its
    # watches, not kopf's (no namespace or CRD listing in this mode).
    # (The metric follows the status write by a moment.)
    wait_for(
        lambda: (
            True
            if metric(op, "inferline_pipelines", condition="Ready", status="True") == 1
            else None
        ),
        "the operator to count its one Ready pipeline",
        10,
    )
    assert metric(op, "inferline_pipelines", condition="Ready", status="False") == 0
    wait_for(lambda: swept(op), "the operator's first sweep", 30)
    assert refusals(op) == [], "\n".join(refusals(op))


# -- uninstall ------------------------------------------------------------------------------------


def test_uninstall_keeps_crds_and_pipelines_and_the_documented_switch_removes_them(
    scope: Scope, release: Release, served: dict[str, Any], user_namespace: str, kubectl: Kubectl
) -> None:
    for op in scope.operators:  # its credentials go with the release
        op.stop()
    label = f"app.kubernetes.io/instance={release.name}"
    cluster_rbac = "clusterroles,clusterrolebindings"
    assert get_json(kubectl, cluster_rbac, "-l", label)["items"]

    release.helm.ok("uninstall", release.name, "-n", release.namespace, "--wait")
    scope.releases.remove(release)
    # The operator and everything else of the release is gone...
    what = "deployments,services,serviceaccounts"
    assert get_json(kubectl, what, "-n", release.namespace, "-l", label)["items"] == []
    wait_for(
        lambda: (
            True
            if not get_json(kubectl, "pods", "-n", release.namespace, "-l", label)["items"]
            else None
        ),
        "the operator's pod to go",
    )
    assert get_json(kubectl, cluster_rbac, "-l", label)["items"] == []
    assert get_json(kubectl, "clusterbackends", "-l", label)["items"] == []
    # ...the CRDs and the user's pipeline (and what serves it) are not.
    assert (
        sorted(c["metadata"]["name"] for c in get_json(kubectl, "crd", "-l", CRD_SELECTOR)["items"])
        == CRD_NAMES
    )
    pipe = get(kubectl, user_namespace, "minimal-cpu")
    assert pipe["metadata"].get("deletionTimestamp") is None
    assert get_json(kubectl, "deployment", "minimal-cpu", "-n", user_namespace)

    # The documented switch (docs/crds.md, NOTES.txt) removes the CRDs, and with them the
    # pipelines; the garbage collector removes what served them.
    proc = kubectl("delete", "crd", "-l", CRD_SELECTOR, "--timeout=120s")
    assert proc.returncode == 0, proc.stderr
    assert get_json(kubectl, "crd", "-l", CRD_SELECTOR)["items"] == []

    def serving_gone() -> bool | None:
        left = kubectl("get", "deployment", "minimal-cpu", "-n", user_namespace)
        return True if left.returncode != 0 and "NotFound" in left.stderr else None

    wait_for(serving_gone, "the garbage collector to remove the pipeline's Deployment", 60)
