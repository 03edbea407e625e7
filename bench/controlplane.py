"""Control-plane benchmark: the operator on the e2e control plane (real apiserver, controllers,
scheduler; kwok nodes), as `inferline operator` runs.

    .venv/bin/python bench/controlplane.py [--sizes 100,500,1000] [--samples 20]

Measures
- apply -> children and apply -> Ready for one pipeline at a time (p50/p95 over samples);
- for N pipelines applied at once: time until every one is reconciled (status.observedGeneration
  caught up and its Deployment exists) and until every one is Ready (its pod scheduled and
  reported ready by kwok), the operator's CPU seconds and peak RSS, and the apiserver requests
  per pipeline (apiserver_request_total deltas, writes split from reads).
Writes bench/results/controlplane.{json,md} and controlplane.png.

The scale runs use a kwok backend: kwok reports pods Ready without a process, so "Ready" there is
the control plane's share of the way. The real data plane is measured one pipeline at a time on
the inferline-cpu backend, whose pods the e2e pod runner runs as real tritonservers: apply ->
Ready -> the first request answered through a ready endpoint.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from e2e import build  # noqa: E402
from e2e.cluster import Cluster  # noqa: E402
from e2e.dataplane import infer, ready_addresses  # noqa: E402
from e2e.operator import OperatorProcess  # noqa: E402
from e2e.pipelines import code_config_map, kwok_backend, pipeline  # noqa: E402

RESULTS = REPO / "bench" / "results"
PODS_PER_NODE = 250


def extra_nodes(count: int) -> list[dict[str, Any]]:
    """CPU nodes for kwok beyond nodes.yaml, so a thousand pods have room."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"bench-cpu-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": f"bench-cpu-{i}"},
            },
            "status": {
                "capacity": {"cpu": "256", "memory": "1Ti", "pods": str(PODS_PER_NODE)},
                "allocatable": {"cpu": "256", "memory": "1Ti", "pods": str(PODS_PER_NODE)},
            },
        }
        for i in range(count)
    ]


class Api:
    """Just enough of the Kubernetes API for the benchmark, over the official client."""

    def __init__(self, cluster: Cluster) -> None:
        from kubernetes import client

        self.client = cluster.api_client()
        self.custom = client.CustomObjectsApi(self.client)
        self.core = client.CoreV1Api(self.client)
        self.apps = client.AppsV1Api(self.client)

    def create_pipeline(self, ns: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(
            "inferline.dev", "v1alpha1", ns, "inferencepipelines", body
        )

    def list_pipelines(self, ns: str, **kw: Any) -> Any:
        """list_namespaced_custom_object for InferencePipelines (watchable)."""
        return self.custom.list_namespaced_custom_object(
            "inferline.dev", "v1alpha1", ns, "inferencepipelines", **kw
        )

    def get_pipeline(self, ns: str, name: str) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(
                "inferline.dev", "v1alpha1", ns, "inferencepipelines", name
            )
        )

    def delete_pipeline(self, ns: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            "inferline.dev", "v1alpha1", ns, "inferencepipelines", name
        )

    def deployment_names(self, ns: str) -> set[str]:
        return {d.metadata.name for d in self.apps.list_namespaced_deployment(ns).items}

    def apiserver_requests(self) -> Counter[tuple[str, str]]:
        """apiserver_request_total summed by (verb, resource[/subresource])."""
        from prometheus_client.parser import text_string_to_metric_families

        resp = self.client.call_api(*self.client.param_serialize("GET", "/metrics"))
        text = resp.read().decode()
        counts: Counter[tuple[str, str]] = Counter()
        for family in text_string_to_metric_families(text):
            if family.name != "apiserver_request":
                continue
            for s in family.samples:
                if not s.name.endswith("_total"):
                    continue
                res = s.labels.get("resource", "")
                if s.labels.get("subresource"):
                    res += "/" + s.labels["subresource"]
                counts[(s.labels.get("verb", ""), res)] += int(s.value)
        return counts


def ready(p: dict[str, Any]) -> bool:
    st = p.get("status") or {}
    if st.get("observedGeneration") != p["metadata"].get("generation"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))


def reconciled(p: dict[str, Any]) -> bool:
    st = p.get("status") or {}
    return bool(st.get("observedGeneration") == p["metadata"].get("generation") and st.get("steps"))


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


class Sampler(threading.Thread):
    """Peak RSS and CPU time of the operator process while a run lasts."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self.stop_flag = threading.Event()

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.2)


def bench_namespace(api: Api, kubectl: Any, ns: str) -> None:
    """A namespace ready for pods, holding the ConfigMap `code` the pipelines' step runs."""
    kubectl("create", "namespace", ns)
    kubectl("wait", "--for=create", "serviceaccount/default", "-n", ns, "--timeout=60s")
    api.core.create_namespaced_config_map(ns, code_config_map("code"))


def latency_samples(api: Api, kubectl: Any, samples: int) -> dict[str, list[float]]:
    ns = "bench-latency"
    bench_namespace(api, kubectl, ns)
    to_children: list[float] = []
    to_ready: list[float] = []
    for i in range(samples):
        name = f"lat-{i}"
        t0 = time.monotonic()
        api.create_pipeline(ns, pipeline(name, code="code"))
        got_children = None
        while True:
            now = time.monotonic()
            if got_children is None and name in api.deployment_names(ns):
                got_children = now - t0
            p = api.get_pipeline(ns, name)
            if ready(p):
                to_ready.append(now - t0)
                break
            if now - t0 > 120:
                raise RuntimeError(f"{name} not Ready after 120 s: {p.get('status')}")
            time.sleep(0.02)
        to_children.append(got_children if got_children is not None else to_ready[-1])
    return {"apply_to_children_s": to_children, "apply_to_ready_s": to_ready}


def serving_samples(api: Api, kubectl: Any, samples: int) -> dict[str, list[float]]:
    """apply -> Ready and apply -> first answered request, with real tritonservers (the pod
    runner runs inferline-cpu pods as processes), one pipeline at a time."""
    ns = "bench-serving"
    bench_namespace(api, kubectl, ns)
    to_ready: list[float] = []
    to_answer: list[float] = []
    for i in range(samples):
        name = f"srv-{i}"
        t0 = time.monotonic()
        api.create_pipeline(ns, pipeline(name, code="code", backend="inferline-cpu"))
        while True:
            p = api.get_pipeline(ns, name)
            if ready(p):
                to_ready.append(time.monotonic() - t0)
                break
            if time.monotonic() - t0 > 180:
                raise RuntimeError(f"{name} not Ready after 180 s: {p.get('status')}")
            time.sleep(0.05)
        while True:
            try:
                (address,) = ready_addresses(api.client, ns, name)[:1]
                if infer(address, name, {"X": [1.0, 2.5]}) == {"Y": [2.0, 5.0]}:
                    to_answer.append(time.monotonic() - t0)
                    break
            except (ValueError, OSError):
                pass
            if time.monotonic() - t0 > 180:
                raise RuntimeError(f"{name}: Ready but no answer after 180 s")
            time.sleep(0.05)
        api.delete_pipeline(ns, name)
        kubectl(
            "wait",
            "--for=delete",
            "pod",
            "-l",
            f"inferline.dev/pipeline={name}",
            "-n",
            ns,
            "--timeout=120s",
        )
    return {"apply_to_ready_serving_s": to_ready, "apply_to_first_answer_s": to_answer}


class Tracker:
    """When every pipeline of a namespace was first reconciled (status caught up and its
    Deployment exists) and first Ready, from watch events: polling lists of a thousand objects
    would load the apiserver being measured."""

    def __init__(self, api: Api, ns: str, t0: float) -> None:
        self.t0 = t0
        self.reconciled: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.deployments: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._watch, args=(fn, ns, handle), daemon=True)
            for fn, handle in (
                (api.list_pipelines, self._pipeline),
                (api.apps.list_namespaced_deployment, self._deployment),
            )
        ]
        for t in self.threads:
            t.start()

    def _watch(self, fn: Any, ns: str, handle: Any) -> None:
        from kubernetes import watch

        while not self.stop.is_set():
            w = watch.Watch()
            for ev in w.stream(fn, ns, timeout_seconds=30):
                obj = ev["object"]
                handle(obj if isinstance(obj, dict) else obj.to_dict())
                if self.stop.is_set():
                    w.stop()
                    return

    def _pipeline(self, p: dict[str, Any]) -> None:
        now, name = time.monotonic() - self.t0, p["metadata"]["name"]
        with self.lock:
            if reconciled(p):
                self.reconciled.setdefault(name, now)
            if ready(p):
                self.ready.setdefault(name, now)

    def _deployment(self, d: dict[str, Any]) -> None:
        with self.lock:
            self.deployments.setdefault(d["metadata"]["name"], time.monotonic() - self.t0)

    def wait(self, n: int, timeout_s: float) -> tuple[float, float]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if (
                    len(self.ready) == n
                    and len(self.reconciled) == n
                    and len(self.deployments) == n
                ):
                    self.stop.set()
                    done = {k: max(v, self.deployments[k]) for k, v in self.reconciled.items()}
                    return max(done.values()), max(self.ready.values())
            time.sleep(0.2)
        raise RuntimeError(
            f"{n} pipelines: {len(self.reconciled)} reconciled, {len(self.ready)} Ready "
            f"after {timeout_s:.0f} s"
        )


def operator_reconciles(op: OperatorProcess) -> float:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(op.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        if f.name == "inferline_reconcile"
        for s in f.samples
        if s.name.endswith("_total")
    )


def operator_events(api: Api, ns: str) -> int:
    events = api.core.list_namespaced_event(ns).items
    return sum(
        1
        for e in events
        if "inferline" in ((e.source and e.source.component) or e.reporting_component or "")
    )


def scale_run(api: Api, kubectl: Any, op: OperatorProcess, n: int) -> dict[str, Any]:
    ns = f"bench-{n}"
    bench_namespace(api, kubectl, ns)
    assert op.process is not None
    sampler = Sampler(op.process.popen.pid)
    sampler.start()
    cpu0 = sampler.cpu()
    requests0 = api.apiserver_requests()
    reconciles0 = operator_reconciles(op)
    t0 = time.monotonic()
    tracker = Tracker(api, ns, t0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: api.create_pipeline(ns, pipeline(f"p{i}", code="code")), range(n)))
    created = time.monotonic() - t0
    t_reconciled, t_ready = tracker.wait(n, timeout_s=1800)
    cpu = sampler.cpu() - cpu0
    sampler.stop_flag.set()
    sampler.join()
    requests1 = api.apiserver_requests()
    delta = requests1 - requests0
    # The operator's writes: its server-side applies (nothing else here applies), its status
    # patches, and the Events it posted.
    writes = sum(v for (verb, _), v in delta.items() if verb == "APPLY")
    writes += delta[("PATCH", "inferencepipelines/status")]
    writes += operator_events(api, ns)
    reconciles = operator_reconciles(op) - reconciles0
    result = {
        "pipelines": n,
        "create_all_s": round(created, 2),
        "all_reconciled_s": round(t_reconciled or t_ready, 2),
        "all_ready_s": round(t_ready, 2),
        "operator_cpu_s": round(cpu, 1),
        "operator_peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "operator_writes_per_pipeline": round(writes / n, 2),
        "operator_reconciles_per_pipeline": round(reconciles / n, 2),
        "apiserver_requests_per_pipeline": round(sum(delta.values()) / n, 1),
        "apiserver_requests_by_verb": dict(sorted(_by_verb(delta).items())),
    }
    # Gone before the next size starts: its deletions would be measured with it.
    kubectl("delete", "namespace", ns, "--timeout=900s", timeout=910)
    return result


def _by_verb(delta: Counter[tuple[str, str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for (verb, _), v in delta.items():
        out[verb] += v
    return out


def report(result: dict[str, Any]) -> str:
    lat = result["latency"]
    lines = [
        "# Control plane: the operator on the e2e control plane",
        "",
        f"Date {result['date']}; {result['machine']}; Kubernetes {result['kubernetes']} "
        "(apiserver, controller-manager, scheduler built from source; kwok nodes: pods are "
        "reported Ready without a process).",
        f"Command: `{result['command']}`",
        "",
        "## One pipeline at a time",
        "",
        "| | p50 (s) | p95 (s) | samples |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("apply_to_children_s", "apply -> children (kwok pods)"),
        ("apply_to_ready_s", "apply -> Ready (kwok pods)"),
        ("apply_to_ready_serving_s", "apply -> Ready (real tritonserver)"),
        ("apply_to_first_answer_s", "apply -> first answered request (real tritonserver)"),
    ):
        xs = lat.get(key)
        if not xs:
            continue
        lines.append(
            f"| {label} | {statistics.median(xs):.3f} | {percentile(xs, 0.95):.3f} | {len(xs)} |"
        )
    lines += [
        "",
        "## Many pipelines at once",
        "",
        "| pipelines | all reconciled (s) | all Ready (s) | operator CPU (s) | operator peak "
        "RSS (MB) | operator reconciles / pipeline | operator writes / pipeline | apiserver "
        "requests / pipeline (all clients) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["scale"]:
        lines.append(
            f"| {r['pipelines']} | {r['all_reconciled_s']} | {r['all_ready_s']} | "
            f"{r['operator_cpu_s']} | {r['operator_peak_rss_mb']} | "
            f"{r.get('operator_reconciles_per_pipeline', '')} | "
            f"{r['operator_writes_per_pipeline']} | "
            f"{r.get('apiserver_requests_per_pipeline', '')} |"
        )
    lines += ["", result.get("notes", ""), ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install matplotlib)", file=sys.stderr)
        return
    sizes = [r["pipelines"] for r in result["scale"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(sizes, [r["all_reconciled_s"] for r in result["scale"]], "o-", label="all reconciled")
    a.plot(sizes, [r["all_ready_s"] for r in result["scale"]], "s-", label="all Ready")
    a.axhline(60, color="grey", ls="--", label="target 60 s")
    a.set_xlabel("pipelines applied at once")
    a.set_ylabel("seconds")
    a.legend()
    b.plot(sizes, [r["operator_peak_rss_mb"] for r in result["scale"]], "o-", label="peak RSS")
    b.axhline(200, color="grey", ls="--", label="target 200 MB")
    b.set_xlabel("pipelines")
    b.set_ylabel("MB")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,500,1000")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--serving-samples", type=int, default=5)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    bins = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="inferline-bench-") as tmp:
        cluster = Cluster(Path(tmp), bins, owned=True)
        cluster.start()
        try:
            for f in sorted((REPO / "crds").glob("*.yaml")):
                cluster.kubectl("apply", "--server-side", "-f", str(f))
            cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(kwok_backend()))
            op = OperatorProcess(cluster, workers=args.workers)
            op.start()
            api = Api(cluster)
            version = cluster.kubectl("version", "-o", "json").stdout
            result: dict[str, Any] = {
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
                f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
                "kubernetes": json.loads(version)["serverVersion"]["gitVersion"],
                "command": " ".join(["python", *sys.argv]),
                "operator_workers": args.workers,
                # First, while only the runner's nodes exist (it takes the nodes it finds at
                # start): pods scheduled onto the bench's kwok nodes would never run.
                "latency": serving_samples(api, cluster.kubectl, args.serving_samples),
                "scale": [],
            }
            total = sum(sizes) + args.samples
            docs = "\n---\n".join(yaml.safe_dump(n) for n in extra_nodes(total // 200 + 2))
            cluster.kubectl("create", "-f", "-", input=docs)
            cluster.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=120s")
            result["latency"] |= latency_samples(api, cluster.kubectl, args.samples)
            for n in sizes:
                print(f"{n} pipelines ...", file=sys.stderr)
                op.restart()  # a fresh process: its peak RSS is this size's alone
                result["scale"].append(scale_run(api, cluster.kubectl, op, n))
                print(json.dumps(result["scale"][-1]), file=sys.stderr)
            op.stop()
        finally:
            cluster.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "controlplane.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "controlplane.md").write_text(report(result))
    plot(result, args.out / "controlplane.png")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
