"""The operator, as a process, against the real control plane: what `kubectl apply` of a
pipeline ends in, and how every later change converges without taking down what serves.

Pods of the inferline-cpu backend run for real (the e2e pod runner starts the runtime and its
tritonserver, and reports readiness from the pod's own probe): the tests that say "serving"
send inference requests to them. The other tests use a backend whose pods kwok reports Running
and Ready without a process (or GPU pods, which this machine cannot run): they prove what the
operator writes and what the apiserver, scheduler and controllers do with it.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from e2e import nodes
from e2e.dataplane import infer, ready_addresses
from e2e.operator import OperatorProcess
from e2e.pipelines import (
    REPO,
    apply,
    children,
    code_config_map,
    condition,
    example,
    get,
    pipeline,
    pods,
    scale_model,
    wait_condition,
    with_spec,
)
from e2e.traffic import Traffic
from e2e.workloads import Kubectl, get_json, wait_for

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("kwok_backend")]

NODES = {n.name: n for n in nodes.load()}
GPU_NODES = {n.name for n in NODES.values() if any(k.startswith("nvidia.com/") for k in n.capacity)}


def owned_by(obj: dict[str, Any], pipe: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences", [])
    return [(r["kind"], r["name"], r["uid"], r.get("controller")) for r in refs] == [
        ("InferencePipeline", pipe["metadata"]["name"], pipe["metadata"]["uid"], True)
    ]


def test_the_cluster_example_reaches_ready_with_owned_labelled_children(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, k8s_client: ApiClient
) -> None:
    apply(kubectl, namespace, *example("minimal.yaml"))
    proc = kubectl(
        "wait",
        "--for=condition=Ready",
        "inferencepipeline/minimal-cpu",
        "-n",
        namespace,
        "--timeout=90s",
    )
    assert proc.returncode == 0, proc.stderr + operator.log_tail()
    pipe = get(kubectl, namespace, "minimal-cpu")
    status = pipe["status"]
    assert status["observedGeneration"] == pipe["metadata"]["generation"]
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)
    assert status["selector"] == "inferline.dev/pipeline=minimal-cpu"
    assert status["endpoints"]["http"] == (
        f"http://minimal-cpu.{namespace}.svc:8000/v2/models/minimal-cpu/infer"
    )
    assert [(s["name"], s["servedAs"], s["device"]) for s in status["steps"]] == [
        ("scale", "native:python", "CPU")
    ]
    for t in ("Validated", "Scheduled", "ModelsReady"):
        assert condition(pipe, t)["status"] == "True", t  # type: ignore[index]
    assert condition(pipe, "Stalled")["status"] == "False"  # type: ignore[index]

    owned = children(kubectl, namespace, "minimal-cpu")
    kinds = sorted(k.split("/")[0] for k in owned)
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"], kinds
    assert all(owned_by(o, pipe) for o in owned.values())
    deploy = owned["Deployment/minimal-cpu"]
    volumes = deploy["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("configMap", {}).get("name") == "minimal-cpu-code" for v in volumes)

    running = pods(kubectl, namespace, "minimal-cpu")
    assert len(running) == 2
    for pod in running:  # a CPU pipeline stays off the GPU nodes
        assert pod["spec"]["nodeName"] not in GPU_NODES, pod["spec"]["nodeName"]

    # Ready means serving: the pods are real tritonservers (the e2e pod runner runs the runtime
    # image), and each address the Service lists answers with the pipeline's result.
    addresses = ready_addresses(k8s_client, namespace, "minimal-cpu")
    assert sorted(addresses) == sorted(p["status"]["podIP"] for p in running)
    for address in addresses:
        assert infer(address, "minimal-cpu", {"X": [1.0, 2.5]}) == {"Y": [2.0, 5.0]}


def test_an_invalid_update_leaves_the_last_good_children_alone(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    good = pipeline("inv", code="inv-code")
    apply(kubectl, namespace, code_config_map("inv-code"), good)
    wait_condition(kubectl, namespace, "inv", "Ready")
    before = children(kubectl, namespace, "inv")

    # The schema accepts it; the dataflow does not (Y is produced as FP32).
    bad = with_spec(good, outputs=[{"name": "Y", "dtype": "INT64", "dims": [-1]}])
    apply(kubectl, namespace, bad)
    p = wait_condition(kubectl, namespace, "inv", "Stalled", reason="InvalidSpec")
    assert "dtype mismatch on tensor 'Y'" in condition(p, "Validated")["message"]  # type: ignore[index]
    ready = condition(p, "Ready")
    assert ready is not None and ready["status"] == "False"
    assert "the last good configuration keeps serving" in ready["message"]
    assert p["status"]["readyReplicas"] == 1

    after = children(kubectl, namespace, "inv")
    assert {k: v["metadata"]["resourceVersion"] for k, v in after.items() if "ConfigMap" in k} == {
        k: v["metadata"]["resourceVersion"] for k, v in before.items() if "ConfigMap" in k
    }
    d0, d1 = before["Deployment/inv"], after["Deployment/inv"]
    assert d1["metadata"]["generation"] == d0["metadata"]["generation"]
    assert d1["spec"]["template"] == d0["spec"]["template"]

    events = get_json(
        kubectl, "events", "-n", namespace, "--field-selector", "involvedObject.name=inv"
    )["items"]
    warnings = [e for e in events if e["type"] == "Warning" and e["reason"] == "InvalidSpec"]
    assert warnings and "dtype mismatch" in warnings[0]["message"]

    # Fixing the spec resumes: Ready again, for the new generation.
    apply(kubectl, namespace, good)
    wait_condition(kubectl, namespace, "inv", "Ready")


def test_children_deleted_or_edited_by_hand_are_put_back(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, code_config_map("hand-code"), pipeline("hand", code="hand-code"))
    wait_condition(kubectl, namespace, "hand", "Ready")
    svc = get_json(kubectl, "service", "hand", "-n", namespace)

    assert kubectl("delete", "service", "hand", "-n", namespace).returncode == 0

    def recreated() -> dict[str, Any] | None:
        proc = kubectl("get", "service", "hand", "-n", namespace, "-o", "json")
        if proc.returncode != 0:
            return None
        new = json.loads(proc.stdout)
        return new if new["metadata"]["uid"] != svc["metadata"]["uid"] else None

    wait_for(recreated, "the deleted Service to be recreated", 30)

    # Someone edits the Deployment by hand: the operator's fields are restored.
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "runtime", "image": "evil:1"}]}}}
    }
    proc = kubectl(
        "patch", "deployment", "hand", "-n", namespace, "--type=strategic", "-p", json.dumps(patch)
    )
    assert proc.returncode == 0, proc.stderr

    def restored() -> bool | None:
        d = get_json(kubectl, "deployment", "hand", "-n", namespace)
        image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        return True if image != "evil:1" else None

    wait_for(restored, "the hand-edited image to be restored", 30)


def test_a_model_edit_rolls_the_pipelines_that_use_it(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        code_config_map("m-code"),
        scale_model("scaler", "m-code"),
        pipeline("uses-a", model_ref="scaler"),
        pipeline("uses-b", model_ref="scaler"),
        pipeline("other", code="m-code"),
    )
    for name in ("uses-a", "uses-b", "other"):
        wait_condition(kubectl, namespace, name, "Ready")

    def template_hash(name: str) -> str:
        d = get_json(kubectl, "deployment", name, "-n", namespace)
        return str(d["spec"]["template"]["metadata"]["annotations"]["inferline.dev/config-hash"])

    before = {n: template_hash(n) for n in ("uses-a", "uses-b", "other")}
    apply(kubectl, namespace, scale_model("scaler", "m-code", factor="3.0"))
    for name in ("uses-a", "uses-b"):
        wait_for(
            lambda name=name: True if template_hash(name) != before[name] else None,  # type: ignore[misc]
            f"{name} to roll after the Model changed",
            30,
        )
    assert template_hash("other") == before["other"]
    configs = [
        o for k, o in children(kubectl, namespace, "uses-a").items() if k.startswith("ConfigMap/")
    ]
    texts = [
        f["text"]
        for c in configs
        for f in json.loads(c["data"]["render.json"])["files"]
        if f["path"] == "uses-a-scale/config.pbtxt"
    ]
    assert any('key: "factor"' in t and 'string_value: "3.0"' in t for t in texts), texts


def test_a_missing_model_is_a_condition_that_clears_when_it_appears(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, code_config_map("late-code"), pipeline("waits", model_ref="late"))
    p = wait_condition(kubectl, namespace, "waits", "Reconciling", reason="MissingReference")
    assert "Model 'late' not found" in condition(p, "Validated")["message"]  # type: ignore[index]
    assert condition(p, "Stalled")["status"] == "False"  # type: ignore[index]
    assert children(kubectl, namespace, "waits") == {}
    apply(kubectl, namespace, scale_model("late", "late-code"))
    wait_condition(kubectl, namespace, "waits", "Ready")


def test_local_files_are_refused_with_a_condition(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    proc = kubectl(
        "apply",
        "--server-side",
        "-n",
        namespace,
        "-f",
        str(REPO / "examples/minimal/pipeline.yaml"),
    )
    assert proc.returncode == 0, proc.stderr
    p = wait_condition(kubectl, namespace, "minimal", "Stalled", reason="NotServableInCluster")
    message = condition(p, "Validated")["message"]  # type: ignore[index]
    assert "scale.py is a file on the machine that wrote the spec" in message
    assert "python.configMap" in message
    assert children(kubectl, namespace, "minimal") == {}


def test_deleting_the_pipeline_removes_everything_it_owned(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, code_config_map("gone-code"), pipeline("gone", code="gone-code"))
    wait_condition(kubectl, namespace, "gone", "Ready")
    assert children(kubectl, namespace, "gone")
    assert kubectl("delete", "inferencepipeline", "gone", "-n", namespace).returncode == 0
    wait_for(
        lambda: True if not children(kubectl, namespace, "gone") else None,
        "the garbage collector to delete the children",
        60,
    )
    wait_for(lambda: True if not pods(kubectl, namespace, "gone") else None, "the pods to go", 60)
    # The user's own ConfigMap (not a child) is left alone.
    assert kubectl("get", "configmap", "gone-code", "-n", namespace).returncode == 0


def test_operator_metrics(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, code_config_map("mx-code"), pipeline("mx", code="mx-code"))
    wait_condition(kubectl, namespace, "mx", "Ready")
    ready = 'inferline_pipelines{condition="Ready",status="True"}'
    # The gauge follows the status write by a moment: poll for it.
    text = wait_for(lambda: t if ready in (t := operator.metrics()) else None, ready, 10)
    assert "inferline_reconcile_total" in text
    assert "inferline_reconcile_duration_seconds_bucket" in text


def test_kill_9_during_creates_and_edits_converges(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    """kill -9 the operator at random points while pipelines are created and edited, 20 times;
    after a restart every pipeline converges, with nothing duplicated or orphaned."""
    import random

    rng = random.Random(7)
    apply(kubectl, namespace, code_config_map("k-code"))
    names = [f"k{i}" for i in range(8)]
    factors: dict[str, str] = {}
    for _ in range(20):
        batch = rng.sample(names, 3)
        objs = []
        for n in batch:
            factors[n] = f"{rng.randint(1, 9)}.0"
            p = pipeline(n, code="k-code", replicas=rng.randint(1, 2))
            p["spec"]["steps"][0]["model"]["parameters"] = {"factor": factors[n]}
            objs.append(p)
        apply(kubectl, namespace, *objs)
        time.sleep(rng.uniform(0, 0.6))  # somewhere in the middle of reconciling them
        operator.kill()
        operator.start()
    for n in factors:
        p = wait_condition(kubectl, namespace, n, "Ready", timeout=120)
        owned = children(kubectl, namespace, n)
        deployments = [k for k in owned if k.startswith("Deployment/")]
        assert deployments == [f"Deployment/{n}"]
        d = owned[f"Deployment/{n}"]
        assert d["spec"]["replicas"] == p["spec"]["replicas"]
        cm_name = next(
            v["configMap"]["name"]
            for v in d["spec"]["template"]["spec"]["volumes"]
            if v["name"] == "rendered"
        )
        rendered = json.loads(owned[f"ConfigMap/{cm_name}"]["data"]["render.json"])
        config = next(f for f in rendered["files"] if f["path"] == f"{n}-scale/config.pbtxt")
        assert f'string_value: "{factors[n]}"' in config["text"]
        assert all(owned_by(o, p) for o in owned.values())

    # Nothing orphaned: every labelled object belongs to a pipeline that exists, and render
    # ConfigMaps no pod uses any more are gone. (Pods deleted between the restarted operator's
    # listing and its watches' are in no event: its sweep forgets them, or they would keep
    # their ConfigMaps for good.)
    def render_config_maps() -> dict[str, list[str]]:
        return {
            n: [k for k in children(kubectl, namespace, n) if k.startswith("ConfigMap/")]
            for n in factors
        }

    try:
        wait_for(
            lambda: True if all(len(c) == 1 for c in render_config_maps().values()) else None,
            "superseded render ConfigMaps to be pruned",
            60,
        )
    except AssertionError as e:
        using = {
            pod["metadata"]["name"]: [
                v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v
            ]
            for n in factors
            for pod in pods(kubectl, namespace, n)
        }
        raise AssertionError(
            f"{e}: render ConfigMaps {render_config_maps()}; pods and the ConfigMaps they use "
            f"{using}; the operator's log:\n{operator.log_tail(40)}"
        ) from None
    assert operator.healthy()


def node_of(kubectl: Kubectl, namespace: str, name: str) -> set[str]:
    """The nodes the pipeline's pods run on (leaving pods are no longer the pipeline's)."""
    return {
        p["spec"].get("nodeName")
        for p in pods(kubectl, namespace, name)
        if not p["metadata"].get("deletionTimestamp")
    }


@pytest.mark.parametrize(
    ("gpu", "nodes_expected", "resource"),
    [
        ({"product": "NVIDIA-H100-80GB-HBM3", "count": 2}, {"gpu-h100-0"}, "nvidia.com/gpu"),
        ({"product": "NVIDIA-L4"}, {"gpu-l4-0"}, "nvidia.com/gpu"),
        # 9Gi fits a 1g.10gb slice; the product narrows A100 vs H100 nodes that both offer it.
        (
            {"memory": "9Gi", "product": "A100-80GB"},
            {"mig-a100-80gb-0"},
            "nvidia.com/mig-1g.10gb",
        ),
        # Single strategy: the slice is nvidia.com/gpu on a node whose product names the profile.
        ({"migProfile": "1g.5gb"}, {"mig-a100-40gb-single-0"}, "nvidia.com/gpu"),
    ],
    ids=["h100-x2", "l4", "mig-by-memory", "mig-single"],
)
def test_gpu_pipelines_land_where_their_gpus_are(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    gpu: dict[str, Any],
    nodes_expected: set[str],
    resource: str,
) -> None:
    apply(
        kubectl,
        namespace,
        code_config_map("g-code"),
        pipeline("g", code="g-code", device="GPU", gpu=gpu),
    )
    p = wait_condition(kubectl, namespace, "g", "Ready")
    assert node_of(kubectl, namespace, "g") == nodes_expected
    assert p["status"]["gpuResource"]["resource"] == resource
    d = get_json(kubectl, "deployment", "g", "-n", namespace)
    limits = d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits[resource] == str(gpu.get("count", 1))
    scheduled = condition(p, "Scheduled")
    assert scheduled is not None and resource in scheduled["message"]


@pytest.mark.parametrize(
    ("gpu", "says"),
    [
        ({"migProfile": "7g.80gb"}, "no node offers nvidia.com/mig-7g.80gb; the cluster has"),
        ({"product": "NVIDIA-B200"}, "no node has GPU product NVIDIA-B200; the cluster has"),
        ({"product": "NVIDIA-H100-80GB-HBM3", "count": 9}, "a pod cannot span nodes"),
    ],
    ids=["mig-profile", "product", "count"],
)
def test_what_nobody_has_is_explained_before_the_scheduler_is_asked(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, gpu: dict[str, Any], says: str
) -> None:
    apply(
        kubectl,
        namespace,
        code_config_map("n-code"),
        pipeline("n", code="n-code", device="GPU", gpu=gpu),
    )
    p = wait_condition(kubectl, namespace, "n", "Stalled", reason="NoCapacity")
    scheduled = condition(p, "Scheduled")
    assert scheduled is not None and scheduled["status"] == "False"
    assert says in scheduled["message"], scheduled["message"]
    assert children(kubectl, namespace, "n") == {}  # nothing for the scheduler to refuse


def test_moving_a_pipeline_from_gpu_to_cpu_is_a_rolling_change(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    """One field moves the whole pipeline; the rollout never drops to zero ready replicas."""
    on_gpu = pipeline(
        "mv", code="mv-code", device="GPU", gpu={"product": "NVIDIA-H100-80GB-HBM3"}, replicas=2
    )  # kwok runs the GPU pods; the CPU ones that replace them are real tritonservers
    apply(kubectl, namespace, code_config_map("mv-code"), on_gpu)
    wait_condition(kubectl, namespace, "mv", "Ready")
    assert node_of(kubectl, namespace, "mv") == {"gpu-h100-0"}

    on_cpu = copy.deepcopy(on_gpu)
    on_cpu["spec"]["placement"] = {"device": "CPU"}
    on_cpu["spec"]["backend"] = {"name": "inferline-cpu"}
    apply(kubectl, namespace, on_cpu)
    lowest = 2
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        d = get_json(kubectl, "deployment", "mv", "-n", namespace)
        lowest = min(lowest, int(d.get("status", {}).get("readyReplicas") or 0))
        p = get(kubectl, namespace, "mv")
        c = condition(p, "Ready")
        if (
            c
            and c["status"] == "True"
            and p["status"].get("observedGeneration") == p["metadata"]["generation"]
        ):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"not Ready on CPU in time: {p.get('status')}")
    assert lowest >= 1, "the move left no ready replica"
    assert node_of(kubectl, namespace, "mv") <= {"cpu-0", "cpu-1"}
    limits = d["spec"]["template"]["spec"]["containers"][0]["resources"].get("limits", {})
    assert not [k for k in limits if k.startswith("nvidia.com/")]


def test_a_spec_change_rolls_out_without_a_failed_request(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, k8s_client: ApiClient
) -> None:
    """Real pods under real traffic: a changed parameter rolls both replicas, one at a time,
    and no request fails (maxUnavailable 0, readiness from the pod's probe, a preStop drain)."""
    p = pipeline("roll", code="roll-code", backend="inferline-cpu", replicas=2)
    apply(kubectl, namespace, code_config_map("roll-code"), p)
    wait_condition(kubectl, namespace, "roll", "Ready", timeout=180)

    def request(address: str) -> None:
        y = infer(address, "roll", {"X": [1.0]})["Y"][0]
        assert y in (2.0, 3.0), y

    changed = copy.deepcopy(p)
    changed["spec"]["steps"][0]["model"]["parameters"] = {"factor": "3.0"}
    with Traffic(lambda: ready_addresses(k8s_client, namespace, "roll"), request) as traffic:
        time.sleep(1)
        apply(kubectl, namespace, changed)
        wait_condition(kubectl, namespace, "roll", "Ready", timeout=180)
        time.sleep(1)
    report = traffic.report
    assert report.sent > 20, report.summary()
    assert report.failed == 0, report.summary()
    for address in ready_addresses(k8s_client, namespace, "roll"):
        assert infer(address, "roll", {"X": [1.0]}) == {"Y": [3.0]}


def test_a_model_from_s3_with_a_credentials_secret_serves(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """The Model names a Secret; the operator mounts it; the runtime fetches from a real S3
    (moto's server, signatures and IAM checked) and the pipeline answers."""
    import numpy as np
    import xgboost

    from tests.integration.objectstores import moto_s3

    rng = np.random.default_rng(0)
    x = rng.random((200, 4), dtype=np.float32)
    booster = xgboost.train(
        {"max_depth": 3}, xgboost.DMatrix(x, label=x[:, 0] + 2 * x[:, 1]), num_boost_round=5
    )
    with moto_s3(tmp_path / "moto.log") as s3:
        s3.client().create_bucket(Bucket="models")
        s3.client().put_object(
            Bucket="models", Key="trees/xgboost.json", Body=booster.save_raw("json")
        )
        keys = s3.reader("pipeline-reader", ["models"])
        s3.require_auth()
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-reader"},
            "stringData": {
                "AWS_ACCESS_KEY_ID": keys.access_key_id,
                "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
            },
        }
        model = {
            "apiVersion": "inferline.dev/v1alpha1",
            "kind": "Model",
            "metadata": {"name": "trees"},
            "spec": {
                "format": "fil",
                "storageUri": "s3://models/trees/xgboost.json",
                "credentialsSecret": "s3-reader",
                "storage": {"endpoint": s3.endpoint},
                "tree": {"modelType": "xgboost_json"},
                "maxBatchSize": 8,
                "inputs": [{"name": "input__0", "dtype": "FP32", "dims": [4]}],
                "outputs": [{"name": "output__0", "dtype": "FP32", "dims": [1]}],
            },
        }
        pipe = {
            "apiVersion": "inferline.dev/v1alpha1",
            "kind": "InferencePipeline",
            "metadata": {"name": "s3trees"},
            "spec": {
                "backend": {"name": "inferline-cpu"},
                "placement": {"device": "CPU"},
                "maxBatchSize": 8,
                "inputs": [{"name": "X", "dtype": "FP32", "dims": [4]}],
                "outputs": [{"name": "Y", "dtype": "FP32", "dims": [1]}],
                "steps": [
                    {
                        "name": "t",
                        "modelRef": {"name": "trees"},
                        "inputMap": {"input__0": "X"},
                        "outputMap": {"output__0": "Y"},
                    }
                ],
            },
        }
        apply(kubectl, namespace, secret, model, pipe)
        wait_condition(kubectl, namespace, "s3trees", "Ready", timeout=180)
        d = get_json(kubectl, "deployment", "s3trees", "-n", namespace)
        volumes = d["spec"]["template"]["spec"]["volumes"]
        assert any(v.get("secret", {}).get("secretName") == "s3-reader" for v in volumes)
        assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(d)  # mounted, never inlined
        (address,) = ready_addresses_of(kubectl, namespace, "s3trees")
        got = infer(address, "s3trees", {"X": [float(v) for v in x[0]]})["Y"]
        want = booster.inplace_predict(x[:1])
        assert abs(got[0] - float(want[0])) < 1e-5, (got, want)


def ready_addresses_of(kubectl: Kubectl, namespace: str, name: str) -> list[str]:
    return [
        p["status"]["podIP"]
        for p in pods(kubectl, namespace, name)
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
