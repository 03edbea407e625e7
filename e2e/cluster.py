"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok (which runs the fake GPU/MIG nodes of nodes.yaml) and the pod runner (which
runs Inferline runtime pods on those nodes as real processes, on pod IPs routed to this machine).

Used by the pytest fixtures (e2e/plugin.py) and by hand:

    python -m e2e.cluster up      # start detached; state in $INFERLINE_E2E_STATE
    eval "$(python -m e2e.cluster env)"
    python -m e2e.cluster down
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from e2e import build, kwok_stages, nodes, pki, podnet, procs

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"  # kwok hands out its pods' IPs from here (runner pods: podnet.py)
MAX_PODS_ENV = "INFERLINE_E2E_RUNNER_MAX_PODS"
DEFAULT_MAX_PODS = 4  # real tritonservers at once: what a 2-core CI machine can carry
_REPO_ROOT = Path(__file__).resolve().parent.parent
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Apiserver SANs: loopback (how everything here reaches it) and its in-cluster names.
_API_SANS = [
    "IP:127.0.0.1",
    "DNS:localhost",
    "IP:10.96.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
]


class ClusterError(RuntimeError):
    """The control plane failed to start or to become ready; the message holds the logs."""


@dataclass(frozen=True)
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    runner: int

    @classmethod
    def allocate(cls) -> Ports:
        # Bind them all at once so the kernel hands out distinct ports; a small race with other
        # processes remains and shows up as a component failing to start (with its log).
        socks = []
        try:
            for _ in range(7):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                socks.append(s)
            return cls(*(s.getsockname()[1] for s in socks))
        finally:
            for s in socks:
                s.close()


def state_root() -> Path:
    """Where `python -m e2e.cluster up` keeps its detached cluster."""
    default = build.cache_root() / "cluster"
    return Path(os.environ.get("INFERLINE_E2E_STATE", default)).expanduser()


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _kubeconfig(path: Path, server: str, ca: Path, user: str, cert: pki.KeyPair) -> Path:
    """A self-contained kubeconfig (certs inlined) so it stays valid when copied elsewhere."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "inferline-e2e",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert.cert),
                    "client-key-data": _b64(cert.key),
                },
            }
        ],
        "contexts": [
            {"name": "inferline-e2e", "context": {"cluster": "inferline-e2e", "user": user}}
        ],
        "current-context": "inferline-e2e",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    # No proxies: urllib would send even 127.0.0.1 through $https_proxy.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Cluster:
    """One control plane whose state, pidfiles and logs live in `directory`.

    `owned=True` (test sessions): the components die with this process. `owned=False`
    (`python -m e2e.cluster up`): they outlive it and are stopped by `down`.
    """

    def __init__(self, directory: Path, bin_dir: Path, *, owned: bool) -> None:
        self.dir = directory
        self.bin_dir = bin_dir
        self.owned = owned
        self.run = procs.RunDir(directory)
        self.kubeconfig = directory / "kubeconfig"
        self.ports: Ports | None = None
        self.processes: dict[str, procs.Process] = {}
        self.nodes = nodes.load()
        self.podnet: podnet.PodNetwork | None = None
        self.max_pods = int(os.environ.get(MAX_PODS_ENV, DEFAULT_MAX_PODS))

    # -- public helpers for tests -------------------------------------------------------------

    @property
    def server(self) -> str:
        assert self.ports, "cluster not started"
        return f"https://127.0.0.1:{self.ports.apiserver}"

    def env(self) -> dict[str, str]:
        """Environment for running kubectl/helm against this cluster.

        Their caches and helm's config live in the run directory: kubectl's discovery cache is
        keyed by host:port, and a later cluster on the same port must not see this one's CRDs.
        """
        path = os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", "")])
        home = self.dir / "home"
        return os.environ | {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": path,
            "KUBECACHEDIR": str(home / "kube-cache"),
            "HELM_CACHE_HOME": str(home / "helm-cache"),
            "HELM_CONFIG_HOME": str(home / "helm-config"),
            "HELM_DATA_HOME": str(home / "helm-data"),
        }

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster; never raises on a non-zero exit."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )

    @property
    def runner_url(self) -> str:
        """The pod runner's status endpoint: GET /pods lists its pods, processes and logs."""
        assert self.ports, "cluster not started"
        return f"http://127.0.0.1:{self.ports.runner}"

    @property
    def pod_cidr(self) -> str:
        """Where runner pods get their IPs (routed to this machine)."""
        assert self.podnet, "cluster not started"
        return self.podnet.cidr

    def api_client(self) -> ApiClient:
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def log_tails(self, lines: int = 30) -> dict[str, str]:
        return {
            log.stem: "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            for log in sorted(self.run.logs.glob("*.log"))
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> None:
        """Start every component and return once nodes are Ready; on failure, stop and raise."""
        deadline = time.monotonic() + timeout
        for attempt in range(3):
            try:
                self._start(deadline)
                return
            except ClusterError as e:
                self.stop()
                # Another process may take a port between Ports.allocate and the bind.
                if "address already in use" not in str(e) or attempt == 2:
                    raise
                shutil.rmtree(self.dir)
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        self.run.stop_all()
        for p in self.processes.values():
            with contextlib.suppress(Exception):
                p.popen.wait(timeout=1)
        self.processes.clear()
        if self.podnet is not None:
            self.podnet.release(self.dir)
            self.podnet = None

    def _start(self, deadline: float) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run.create(owned=self.owned)
        self.ports = ports = Ports.allocate()
        try:
            self.podnet = podnet.PodNetwork.claim(self.dir)
        except podnet.PodNetworkError as e:
            raise ClusterError(str(e)) from None
        certs = self._pki()
        state = {"ports": asdict(ports), "bin_dir": str(self.bin_dir), "pod_cidr": self.pod_cidr}
        (self.dir / "state.json").write_text(json.dumps(state, indent=2))
        self._spawn("etcd", self._etcd_args(ports))
        self._wait("etcd", lambda: _http_ok(f"http://127.0.0.1:{ports.etcd}/health"), deadline)
        self._spawn("kube-apiserver", self._apiserver_args(ports, certs))
        # Verifies every serving cert against our CA and authenticates as the admin.
        tls = ssl.create_default_context(cafile=str(certs["ca"].cert))
        tls.load_cert_chain(str(certs["admin"].cert), str(certs["admin"].key))
        self._wait("kube-apiserver", partial(_http_ok, f"{self.server}/readyz", tls), deadline)
        self._spawn("kube-controller-manager", self._controller_manager_args(ports, certs))
        self._spawn("kube-scheduler", self._scheduler_args(ports, certs))
        kwok_env = os.environ | {"KWOK_WORKDIR": str(self.dir / "kwok")}  # not ~/.kwok
        self._spawn("kwok", self._kwok_args(ports), env=kwok_env)
        for name, url in (
            ("kube-controller-manager", f"https://127.0.0.1:{ports.controller_manager}/healthz"),
            ("kube-scheduler", f"https://127.0.0.1:{ports.scheduler}/healthz"),
            ("kwok", f"http://127.0.0.1:{ports.kwok}/healthz"),
        ):
            self._wait(name, partial(_http_ok, url, tls), deadline)
        self._create_nodes(deadline)
        # After the nodes: the runner takes the fake nodes it finds at start.
        self._spawn("pod-runner", self._runner_args(ports), env=self._runner_env())
        self._wait("pod-runner", partial(_http_ok, f"{self.runner_url}/healthz"), deadline)

    def _pki(self) -> dict[str, pki.KeyPair]:
        ca = pki.PKI(self.dir / "pki")
        certs = {
            "ca": ca.ca,
            "sa": ca.service_account_keys(),
            "apiserver": ca.issue("apiserver", "kube-apiserver", server_sans=_API_SANS),
            "admin": ca.issue("admin", "inferline-e2e-admin", organization="system:masters"),
        }
        # The aggregation layer's own CA, as kubeadm sets it up; without it the controller
        # manager and scheduler log errors about a missing requestheader CA all the time.
        front_proxy = pki.PKI(self.dir / "pki" / "front-proxy")
        certs["front-proxy-ca"] = front_proxy.ca
        certs["front-proxy-client"] = front_proxy.issue("client", "front-proxy-client")
        for name in ("kube-controller-manager", "kube-scheduler"):
            # Client certs with the identities RBAC's bootstrap policy grants these two...
            certs[name] = ca.issue(name, f"system:{name}")
            _kubeconfig(self.dir / f"{name}.kubeconfig", self.server, ca.ca.cert, name, certs[name])
            # ...and serving certs for their /healthz, so readiness checks verify TLS too.
            certs[f"{name}-serving"] = ca.issue(
                f"{name}-serving", name, server_sans=["IP:127.0.0.1", "DNS:localhost"]
            )
        _kubeconfig(self.kubeconfig, self.server, ca.ca.cert, "admin", certs["admin"])
        return certs

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.processes[name] = self.run.spawn(name, argv, env=env, owned=self.owned)

    def _wait(self, name: str, ready: Callable[[], bool], deadline: float) -> None:
        proc = self.processes[name]
        while True:
            if (rc := proc.exited()) is not None:
                raise ClusterError(f"{name} exited with {rc}:\n{proc.log_tail()}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"{name} not ready in time:\n{proc.log_tail()}")
            time.sleep(0.2)

    def _etcd_args(self, p: Ports) -> list[str]:
        client, peer = f"http://127.0.0.1:{p.etcd}", f"http://127.0.0.1:{p.etcd_peer}"
        return [
            str(self.bin_dir / "etcd"),
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            # Test data: durability buys nothing and fsync is the slowest part of etcd.
            "--unsafe-no-fsync",
        ]

    def _apiserver_args(self, p: Ports, c: dict[str, pki.KeyPair]) -> list[str]:
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{p.etcd}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={p.apiserver}",
            f"--tls-cert-file={c['apiserver'].cert}",
            f"--tls-private-key-file={c['apiserver'].key}",
            f"--client-ca-file={c['ca'].cert}",
            "--authorization-mode=Node,RBAC",
            # As OpenShift and other hardened clusters run it: setting blockOwnerDeletion on an
            # owner reference needs `update` of the owner's finalizers, so RBAC that forgets it
            # fails here and not only there.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={c['sa'].cert}",
            f"--service-account-signing-key-file={c['sa'].key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--requestheader-client-ca-file={c['front-proxy-ca'].cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={c['front-proxy-client'].cert}",
            f"--proxy-client-key-file={c['front-proxy-client'].key}",
            "--allow-privileged=true",
            # The `kubernetes` Service can't point at 127.0.0.1 (loopback endpoints are invalid);
            # nothing here runs in a pod, so leave it without endpoints instead of erroring.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]

    def _component_args(self, name: str, c: dict[str, pki.KeyPair]) -> list[str]:
        kc = self.dir / f"{name}.kubeconfig"
        # Delegated authn/authz for their /healthz and /metrics, as kubeadm sets them up.
        return [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--profiling=false",
            f"--tls-cert-file={c[f'{name}-serving'].cert}",
            f"--tls-private-key-file={c[f'{name}-serving'].key}",
        ]

    def _controller_manager_args(self, p: Ports, c: dict[str, pki.KeyPair]) -> list[str]:
        return [
            str(self.bin_dir / "kube-controller-manager"),
            *self._component_args("kube-controller-manager", c),
            f"--secure-port={p.controller_manager}",
            # Each controller acts as its own service account (as on kubeadm clusters), so RBAC
            # for garbage collection, deployments, replicasets... is the real bootstrap policy.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={c['sa'].key}",
            f"--root-ca-file={c['ca'].cert}",
            f"--cluster-signing-cert-file={c['ca'].cert}",
            f"--cluster-signing-key-file={c['ca'].key}",
            "--controllers=*",
            # Else it creates /usr/libexec/kubernetes/kubelet-plugins/volume/exec on the host.
            f"--flex-volume-plugin-dir={self.dir / 'flexvolume'}",
        ]

    def _scheduler_args(self, p: Ports, c: dict[str, pki.KeyPair]) -> list[str]:
        return [
            str(self.bin_dir / "kube-scheduler"),
            *self._component_args("kube-scheduler", c),
            f"--secure-port={p.scheduler}",
        ]

    def _kwok_args(self, p: Ports) -> list[str]:
        # kwok's default node stages (init + heartbeat with leases) make nodes Ready; its default
        # pod stages, minus runtime pods (kwok_stages.py), make scheduled pods Running.
        config = kwok_stages.write_config(self.dir / "kwok-stages.yaml")
        return [
            str(self.bin_dir / "kwok"),
            f"--config={config}",
            f"--kubeconfig={self.kubeconfig}",
            # Node leases, renewed every 10 s, as kubelets do. kwok's flag default (0) is "no
            # leases", and its node heartbeat stage then updates node status only every ~10
            # minutes: the node lifecycle controller saw every node go NotReady ~50 s after each
            # heartbeat and marked all their pods NotReady (kwok's and the runner's alike).
            "--node-lease-duration-seconds=40",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector={}={}".format(*nodes.KWOK_ANNOTATION),
            f"--cidr={POD_CIDR}",
            f"--server-address=127.0.0.1:{p.kwok}",
        ]

    def _runner_args(self, p: Ports) -> list[str]:
        return [
            sys.executable,
            "-m",
            "e2e.runner",
            f"--kubeconfig={self.kubeconfig}",
            f"--dir={self.dir / 'runner'}",
            f"--pod-cidr={self.pod_cidr}",
            f"--port={p.runner}",
            f"--max-pods={self.max_pods}",
        ]

    def _runner_env(self) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH")
        return os.environ | {"PYTHONPATH": f"{_REPO_ROOT}:{path}" if path else str(_REPO_ROOT)}

    def _create_nodes(self, deadline: float) -> None:
        # The DRA nodes' ResourceSlices (and NVIDIA's DeviceClasses) come with them: kwok does not
        # publish slices, and the scheduler allocates from them without any driver running.
        objects = [n.manifest() for n in self.nodes] + nodes.dra_objects(self.nodes)
        docs = "\n---\n".join(yaml.safe_dump(o) for o in objects)
        self._kubectl_ok("create", "-f", "-", input=docs)
        # Ready needs kwok's node stage; the default ServiceAccount needs the controller manager
        # (pods of any Deployment wait on it).
        for args in (
            ("wait", "--for=condition=Ready", "node", "--all"),
            ("wait", "--for=create", "serviceaccount/default", "-n", "default"),
        ):
            left = max(1, int(deadline - time.monotonic()))
            self._kubectl_ok(*args, f"--timeout={left}s")

    def _kubectl_ok(self, *args: str, input: str | None = None) -> str:
        proc = self.kubectl(*args, input=input)
        if proc.returncode != 0:
            logs = "\n".join(f"--- {k}\n{v}" for k, v in self.log_tails().items())
            raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr}\n{logs}")
        return proc.stdout


# -- command line -----------------------------------------------------------------------------


def _running(run: procs.RunDir) -> bool:
    return any(procs.start_time(pid) == started for _, pid, started in run.recorded())


def _env_lines(directory: Path) -> list[str]:
    state = json.loads((directory / "state.json").read_text())
    return [
        f"export KUBECONFIG={directory / 'kubeconfig'}",
        f"export PATH={state['bin_dir']}:$PATH",
        f"# runtime pods get IPs in {state['pod_cidr']}; their processes and logs: "
        f"curl http://127.0.0.1:{state['ports']['runner']}/pods",
    ]


def cmd_up() -> int:
    directory = state_root()
    run = procs.RunDir(directory)
    if run.pids.is_dir() and _running(run):
        print(f"e2e cluster already up in {directory}", file=sys.stderr)
    else:
        if directory.is_dir():  # a cluster that died without `down`: free its pod range
            podnet.release_recorded(directory)
        shutil.rmtree(directory, ignore_errors=True)
        try:
            bins = build.ensure_built()
            Cluster(directory, bins, owned=False).start()
        except (build.BuildError, ClusterError) as e:
            print(f"e2e cluster failed to start: {e}", file=sys.stderr)
            return 1
        print(f"e2e cluster up in {directory} (logs in {run.logs})", file=sys.stderr)
    print("\n".join(_env_lines(directory)))
    return 0


def cmd_down() -> int:
    directory = state_root()
    if directory.is_dir():
        procs.RunDir(directory).stop_all()
        podnet.release_recorded(directory)
        shutil.rmtree(directory)
        print(f"e2e cluster in {directory} stopped", file=sys.stderr)
    return 0


def cmd_env() -> int:
    directory = state_root()
    if not (directory / "state.json").is_file():
        print("no e2e cluster: run `python -m e2e.cluster up`", file=sys.stderr)
        return 1
    if not _running(procs.RunDir(directory)):
        print(f"warning: the e2e cluster in {directory} is not running", file=sys.stderr)
    print("\n".join(_env_lines(directory)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.cluster", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "env"))
    args = parser.parse_args(argv)
    commands: dict[str, Callable[[], int]] = {"up": cmd_up, "down": cmd_down, "env": cmd_env}
    return commands[args.command]()


if __name__ == "__main__":
    sys.exit(main())
