"""python -m e2e.runner --kubeconfig K --dir D --pod-cidr C --port P [--max-pods N]

Started by e2e/cluster.py as one of the cluster's components; see e2e/README.md.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from e2e.runner.container import Backoff
from e2e.runner.kube import Kube
from e2e.runner.runner import Runner


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m e2e.runner", description=__doc__)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--dir", type=Path, required=True, help="pods' volumes, scratch and logs")
    p.add_argument("--pod-cidr", required=True, help="pod IPs (routed to this machine)")
    p.add_argument("--port", type=int, required=True, help="/healthz and /pods on 127.0.0.1")
    p.add_argument("--max-pods", type=int, default=4, help="pods running at once")
    p.add_argument("--backoff-initial", type=float, default=10, help="CrashLoopBackOff start (s)")
    p.add_argument("--backoff-max", type=float, default=300, help="CrashLoopBackOff cap (s)")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    args.dir.mkdir(parents=True, exist_ok=True)
    kube = Kube(args.kubeconfig)
    runner = Runner(
        kube,
        args.dir,
        args.pod_cidr,
        args.max_pods,
        Backoff(args.backoff_initial, args.backoff_max),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        runner.stopping.set()
        raise KeyboardInterrupt

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, stop)
    server = runner.serve_http(args.port)
    try:
        runner.run()
    except KeyboardInterrupt:
        pass
    finally:
        runner.shutdown()
        server.shutdown()
        kube.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
