"""The runtime entrypoint every pipeline pod runs (and `inferline serve` runs locally).

    python -m inferline.runtime --rendered DIR --repository /models [--address 0.0.0.0] ...

It fetches and verifies the artifacts a rendered pipeline lists, assembles the model
repository, and runs tritonserver in the foreground, forwarding SIGTERM/SIGINT and exiting with
tritonserver's status. Problems with the input (a missing artifact, a checksum mismatch, a busy
port, a model that fails to load) end with one clear log line and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path

from ..errors import UserError
from ..render import mounts
from .fetch import pod_options
from .launch import serve_until_stopped
from .prepare import prepare_repository
from .progress import LogProgress
from .tritonserver import Ports, ServerOptions, TritonProcess

log = logging.getLogger("inferline.runtime")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m inferline.runtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--rendered",
        type=Path,
        required=True,
        help="a rendered pipeline: its render.json, or the directory holding it "
        "(inferline render -o DIR)",
    )
    p.add_argument(
        "--repository",
        type=Path,
        required=True,
        help="where to assemble the model repository (writable)",
    )
    p.add_argument("--address", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--exit-timeout", type=int, default=30, help="seconds to drain on SIGTERM")
    p.add_argument("--ready-timeout", type=float, default=600)
    p.add_argument(
        "--termination-log",
        type=Path,
        metavar="PATH",
        help="write the reason for a failure here (a pod's terminationMessagePath)",
    )
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra tritonserver argument, e.g. --server-arg=--log-verbose=1 (repeatable; "
        "a Backend's spec.args arrive this way)",
    )
    p.add_argument(
        "--server-log", type=Path, help="write tritonserver's log here (default: inherit stdout)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help=f"the artifact cache (default ${mounts.CACHE_DIR_ENV}; none if unset)",
    )
    p.add_argument(
        "--cache-max-size",
        help=f"evict least recently used artifacts above this size, e.g. 50Gi "
        f"(default ${mounts.CACHE_MAX_BYTES_ENV}; no cap if unset)",
    )
    p.add_argument("--parallel", type=int, default=4, help="files downloaded at once (default 4)")
    p.add_argument(
        "--ambient-credentials",
        action="store_true",
        help="also use the environment's cloud credentials (AWS_*, GOOGLE_APPLICATION_CREDENTIALS"
        "); by default only the Secrets a Model names are used",
    )
    return p.parse_args(argv)


class Stopped(Exception):
    """SIGTERM or SIGINT before tritonserver started (e.g. the pod deleted while fetching)."""


def _stop_early(signum: int, _frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = parse_args(argv)
    # As a container's process 1 the runtime gets no default SIGTERM action: without a handler
    # a pod deleted while its artifacts download would wait out its whole grace period.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_early)
    try:
        options = pod_options(
            cache_dir=args.cache_dir,
            cache_max=args.cache_max_size,
            parallel=args.parallel,
            ambient=args.ambient_credentials,
        )
        manifest = prepare_repository(args.rendered, args.repository, LogProgress(), options)
        names = ", ".join(p.served_name for p in manifest.pipelines)
        log.info("repository ready at %s (pipelines: %s)", args.repository, names)
        opts = ServerOptions(
            args.repository,
            Ports(args.http_port, args.grpc_port, args.metrics_port),
            address=args.address,
            exit_timeout_s=args.exit_timeout,
            extra_args=list(args.server_arg),
        )
        server = TritonProcess(opts, log=args.server_log)
        code = serve_until_stopped(
            server,
            lambda: log.info(
                "serving on http :%d, grpc :%d, metrics :%d",
                args.http_port,
                args.grpc_port,
                args.metrics_port,
            ),
            ready_timeout_s=args.ready_timeout,
        )
    except Stopped as e:
        log.info("stopped by %s before serving", e)
        return 0
    except UserError as e:
        log.error("%s", e)
        if args.termination_log is not None:
            termination_message(str(e), args.termination_log)
        return 1
    log.info("tritonserver exited with status %d", code)
    # A signal's death is 128 + its number, as a shell (and kubelet) reports it, not -N & 255.
    return 128 - code if code < 0 else code


def termination_message(text: str, path: Path) -> None:
    """Kubernetes shows this file's content as the container's termination message: the one
    line saying why (else, with FallbackToLogsOnError, the log's tail)."""
    with contextlib.suppress(OSError):
        path.write_text(text[:4096] + "\n")


if __name__ == "__main__":
    sys.exit(main())
