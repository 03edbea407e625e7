"""The runner: watch bound pods, own the runtime pods on kwok's nodes, one worker per pod.

It serves `GET /healthz` (200 once the first list went through) and `GET /pods` (JSON: each
pod's IP, its containers' pids, restart counts and log files) on 127.0.0.1:<port>.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from e2e.runner import images
from e2e.runner.container import Backoff
from e2e.runner.kube import Gone, Kube
from e2e.runner.pod import PodKey, PodWorker

log = logging.getLogger("e2e.runner")
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
_WATCH_TIMEOUT_S = 60


@dataclass(frozen=True)
class Node:
    ip: str
    allocatable: dict[str, str]


class IPPool:
    """Pod IPs from a CIDR, handed out in order and wrapping around (like host-local IPAM), so
    that an address is not reused right after its pod went away."""

    def __init__(self, cidr: str) -> None:
        self.hosts = [str(h) for h in ipaddress.ip_network(cidr).hosts()]
        self.used: set[str] = set()
        self.next = 0
        self.lock = threading.Lock()

    def allocate(self) -> str:
        with self.lock:
            for i in range(len(self.hosts)):
                ip = self.hosts[(self.next + i) % len(self.hosts)]
                if ip not in self.used:
                    self.used.add(ip)
                    self.next = (self.next + i + 1) % len(self.hosts)
                    return ip
        raise RuntimeError(f"no pod IP left in {self.hosts[0]}..{self.hosts[-1]}")

    def release(self, ip: str) -> None:
        with self.lock:
            self.used.discard(ip)


class Runner:
    def __init__(
        self, kube: Kube, directory: Path, pod_cidr: str, max_pods: int, backoff: Backoff
    ) -> None:
        self.kube = kube
        self.dir = directory
        self.ips = IPPool(pod_cidr)
        self.max_pods = max_pods
        self.backoff = backoff
        self.nodes: dict[str, Node] = {}
        self.workers: dict[str, PodWorker] = {}
        self.finished: set[str] = set()  # uids whose worker ended: late events are ignored
        self.slots: set[str] = set()
        self.queue: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ready = threading.Event()

    # -- which pods ------------------------------------------------------------------------------

    def load_nodes(self) -> None:
        for n in self.kube.nodes():
            if KWOK_NODE_ANNOTATION not in n["metadata"].get("annotations", {}):
                continue
            addresses = n.get("status", {}).get("addresses", [])
            ip = next((a["address"] for a in addresses if a["type"] == "InternalIP"), "")
            self.nodes[n["metadata"]["name"]] = Node(ip, n["status"].get("allocatable", {}))

    def owns(self, pod: dict[str, Any]) -> bool:
        return pod["spec"].get("nodeName") in self.nodes and images.is_runtime_pod(pod)

    # -- the process cap -------------------------------------------------------------------------

    def admit(self, worker: PodWorker) -> bool:
        uid = worker.key.uid
        with self.lock:
            if uid in self.slots:
                return True
            if uid not in self.queue:
                self.queue.append(uid)
            if self.queue[0] == uid and len(self.slots) < self.max_pods:
                self.queue.pop(0)
                self.slots.add(uid)
                return True
            return False

    def release_slot(self, worker: PodWorker) -> None:
        with self.lock:
            if worker.key.uid in self.queue:
                self.queue.remove(worker.key.uid)
            if worker.key.uid not in self.slots:
                return
            self.slots.discard(worker.key.uid)
            waiting = self.workers.get(self.queue[0]) if self.queue else None
        if waiting is not None:
            waiting.wake.set()

    def worker_done(self, worker: PodWorker) -> None:
        self.release_slot(worker)
        with self.lock:
            self.finished.add(worker.key.uid)
            self.workers.pop(worker.key.uid, None)

    # -- the watch -------------------------------------------------------------------------------

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        if not self.owns(pod):
            return
        uid = pod["metadata"]["uid"]
        with self.lock:
            worker = self.workers.get(uid)
            if worker is None and kind != "DELETED" and uid not in self.finished:
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    return  # finished before this runner started
                worker = PodWorker(self, pod)
                self.workers[uid] = worker
                log.info("pod %s: taken over", PodKey.of(pod))
                worker.start()
                return
        if worker is None:
            return
        if kind == "DELETED":
            worker.vanished()
        else:
            worker.update(pod)

    def _sync(self) -> str:
        pods, version = self.kube.list_pods()
        listed = {p["metadata"]["uid"] for p in pods}
        for p in pods:
            self.handle("MODIFIED", p)
        with self.lock:
            missing = [w for uid, w in self.workers.items() if uid not in listed]
        for w in missing:
            w.vanished()
        return version

    def run(self) -> None:
        self.load_nodes()
        version = self._sync()
        self.ready.set()
        log.info(
            "watching pods on %d fake nodes (at most %d at once)", len(self.nodes), self.max_pods
        )
        while not self.stopping.is_set():
            try:
                for kind, pod in self.kube.watch_pods(version, _WATCH_TIMEOUT_S):
                    version = pod["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self.handle(kind, pod)
                    if self.stopping.is_set():
                        break
            except Gone:
                version = self._sync()
            except Exception as e:  # apiserver restarting or going away: list again
                if self.stopping.is_set():
                    break
                log.warning("watch failed (%s); listing again", e)
                time.sleep(1)
                try:
                    version = self._sync()
                except Exception as e2:
                    log.warning("list failed: %s", e2)

    def shutdown(self) -> None:
        self.stopping.set()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.wake.set()
        for w in workers:
            w.join(timeout=10)

    # -- status endpoint ---------------------------------------------------------------------------

    def serve_http(self, port: int) -> ThreadingHTTPServer:
        runner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    ok = runner.ready.is_set() and not runner.stopping.is_set()
                    self._send(200 if ok else 503, b"ok" if ok else b"starting", "text/plain")
                elif self.path == "/pods":
                    with runner.lock:
                        workers = list(runner.workers.values())
                    body = json.dumps([w.info() for w in workers], indent=2).encode()
                    self._send(200, body, "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
        return server
