"""Pod IPs this machine answers on: a /24 per cluster, routed to the loopback interface.

Why not 127.0.0.0/8: the apiserver accepts loopback pod IPs, but EndpointSlice (and Endpoints)
validation rejects them ("may not be in the loopback range"), so a Service of such pods would
have no endpoints. A `local` route makes any range local instead (Linux "AnyIP": every address
in it can be bound and connected to, over lo), and the range stays a valid endpoint address.

Each cluster claims a free /24 of 198.18.0.0/15 (RFC 2544's benchmarking range: never used on
real networks, so the route can't shadow a real host) with `ip route add local CIDR dev lo`,
which fails if another cluster on this machine holds it; the claim is recorded in the run
directory and the route deleted when the cluster stops (or by the next session's sweep, after a
SIGKILL). Adding a route needs CAP_NET_ADMIN (root); without it, route a /24 once by hand and
name it in INFERLINE_E2E_POD_RANGE.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

POOL = ipaddress.ip_network("198.18.0.0/15")
RANGE_ENV = "INFERLINE_E2E_POD_RANGE"
RECORD = "pod-route"


class PodNetworkError(RuntimeError):
    """No pod range could be set up; the message says what to do."""


def is_local(ip: str) -> bool:
    """Whether this machine can listen on `ip` (binding fails for a non-local address)."""
    with socket.socket() as s:
        try:
            s.bind((ip, 0))
        except OSError:
            return False
    return True


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("ip")
    if tool is None:
        raise PodNetworkError(
            "the e2e pod network needs iproute2's `ip` (apt-get install iproute2), or a range "
            f"routed by hand in {RANGE_ENV}"
        )
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False, timeout=30)


@dataclass(frozen=True)
class PodNetwork:
    cidr: str
    owned: bool  # this cluster added the route (and deletes it)

    @classmethod
    def claim(cls, run_dir: Path) -> PodNetwork:
        preset = os.environ.get(RANGE_ENV)
        if preset:
            net = ipaddress.ip_network(preset)
            if not is_local(str(next(net.hosts()))):
                raise PodNetworkError(
                    f"{RANGE_ENV}={preset} is not routed to this machine; as root: "
                    f"ip route add local {preset} dev lo"
                )
            return cls(str(net), owned=False)
        subnets = list(POOL.subnets(new_prefix=24))
        start = random.randrange(len(subnets))  # concurrent sessions rarely try the same one
        for subnet in subnets[start:] + subnets[:start]:
            proc = _ip("route", "add", "local", str(subnet), "dev", "lo")
            if proc.returncode == 0:
                (run_dir / RECORD).write_text(f"{subnet}\n")
                return cls(str(subnet), owned=True)
            if "File exists" not in proc.stderr:
                raise PodNetworkError(
                    f"cannot route a pod range to this machine (ip route add local {subnet} dev "
                    f"lo: {proc.stderr.strip()}); run as root (CAP_NET_ADMIN), or route a /24 "
                    f"once by hand and set {RANGE_ENV}"
                )
        raise PodNetworkError(f"every /24 of {POOL} is routed already; delete stale ones")

    def release(self, run_dir: Path) -> None:
        if self.owned:
            _delete_route(self.cidr)
        (run_dir / RECORD).unlink(missing_ok=True)


def _delete_route(cidr: str) -> None:
    with contextlib.suppress(PodNetworkError):
        _ip("route", "del", "local", cidr, "dev", "lo")


def release_recorded(run_dir: Path) -> str | None:
    """Delete the route a (dead) cluster in `run_dir` recorded; return its CIDR."""
    record = run_dir / RECORD
    try:
        cidr = record.read_text().strip()
    except OSError:
        return None
    ipaddress.ip_network(cidr)  # only ever delete what parses as a network
    _delete_route(cidr)
    record.unlink(missing_ok=True)
    return cidr
