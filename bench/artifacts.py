"""What the artifact cache and resumable downloads save, against a real S3 server on loopback.

Starts moto's S3 server (IAM auth on, so every request is signed and checked) behind the test
suite's counting proxy, uploads N objects of SIZE bytes, and times the runtime's fetch
(`inferline.runtime.fetch.fetch_all`, the code a pod runs) for:

- cold: empty cache, every byte over the network (files in parallel);
- cached, hard link: a restarted pod whose cache and repository share a filesystem;
- cached, copy: the cache on another filesystem (a PVC next to an emptyDir repository);
- resume: every response cut after SIZE/8 bytes, more often than the client retries, so the
  run gives up; then the next run goes on from the partial files left in the cache.

Loopback has no bandwidth limit, so "cold" here is a floor: over a real link it only grows,
while the cached rows do not change. Prints a markdown table and writes it with JSON to
bench/results/ (or $OUT).

    PYTHONPATH=.:operator python bench/artifacts.py [--files 2] [--size-mb 128]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from inferline.api.model import StorageOptions
from inferline.runtime.cache import ArtifactCache
from inferline.runtime.credentials import CredentialSource
from inferline.runtime.download import Retry
from inferline.runtime.fetch import Artifact, FetchError, FetchOptions, FetchStats, fetch_all
from tests.integration.objectstores import Proxy, moto_s3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--size-mb", type=int, default=128)
    args = ap.parse_args()
    size = args.size_mb << 20
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp_s, tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        tmp = Path(tmp_s)
        with moto_s3(tmp / "moto.log") as s3:
            c = s3.client()
            c.create_bucket(Bucket="models")
            for i in range(args.files):
                c.put_object(Bucket="models", Key=f"m{i}.bin", Body=os.urandom(size))
            keys = s3.reader("reader", ["models"])
            secret = tmp / "secrets" / "s3"
            secret.mkdir(parents=True)
            (secret / "AWS_ACCESS_KEY_ID").write_text(keys.access_key_id)
            (secret / "AWS_SECRET_ACCESS_KEY").write_text(keys.secret_access_key)
            s3.require_auth()
            u = urlsplit(s3.endpoint)
            proxy = Proxy((u.hostname or "127.0.0.1", u.port or 80)).start()
            storage = StorageOptions(endpoint=proxy.endpoint)
            creds = CredentialSource(tmp / "secrets", ambient=False)

            def run(name: str, cache: Path | None, repo: Path, **kw: object) -> FetchStats:
                arts = [
                    Artifact(f"s3://models/m{i}.bin", repo / f"m{i}.bin", None, "s3", storage)
                    for i in range(args.files)
                ]
                proxy.reset()
                opts = FetchOptions(creds, ArtifactCache(cache) if cache else None, **kw)  # type: ignore[arg-type]
                start = time.monotonic()
                stats = fetch_all(arts, opts)
                seconds = time.monotonic() - start
                rows.append(
                    {
                        "run": name,
                        "seconds": round(seconds, 2),
                        "downloaded_mb": round(stats.downloaded_bytes / 2**20, 1),
                        "from_cache": stats.cached_files,
                        "requests": proxy.count(),
                    }
                )
                print(rows[-1], flush=True)
                shutil.rmtree(repo)
                return stats

            cache = tmp / "cache"
            run("cold (empty cache)", cache, tmp / "r1")
            run("cached, hard link (same filesystem)", cache, tmp / "r2")
            run("cached, copy (cache on another filesystem)", cache, Path(shm) / "r3")
            shutil.rmtree(cache)
            run("no cache (download straight into the repository)", None, tmp / "r4")
            # Cut every response after size/8 bytes, more often than obstore retries, with one
            # attempt: the run fails, leaving partial files; the next run resumes them.
            proxy.cut(after_bytes=size // 8, path_contains="/models/m", times=args.files * 20)
            try:
                run("interrupted run (gives up, keeps partials)", cache, tmp / "r5", retry=Retry(1))
                raise SystemExit("the interrupted run should have failed")
            except FetchError as e:
                kept = sum(p.stat().st_size for p in (cache / "partial").iterdir())
                print(f"interrupted as planned: {e}")
                rows.append(
                    {
                        "run": "interrupted run (gives up, keeps partials)",
                        "kept_mb": round(kept / 2**20, 1),
                        "requests": proxy.count(),
                    }
                )
            proxy.cut(0, "", times=0)
            run("next run resumes the partial files", cache, tmp / "r6")
            proxy.close()
    write(rows, args)


def write(rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    out = Path(os.environ.get("OUT") or Path(__file__).parent / "results")
    out.mkdir(parents=True, exist_ok=True)
    head = f"{args.files} objects x {args.size_mb} MiB from moto S3 (SigV4 + IAM) on loopback"
    lines = [
        f"# Artifact fetch: {head}",
        "",
        "| run | seconds | downloaded MiB | from cache | requests |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "kept_mb" in r:
            lines.append(
                f"| {r['run']} | failed as planned, {r['kept_mb']} MiB kept | | | {r['requests']} |"
            )
            continue
        lines.append(
            f"| {r['run']} | {r['seconds']} | {r['downloaded_mb']} | {r['from_cache']} | "
            f"{r['requests']} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    (out / "artifacts.md").write_text(table)
    (out / "artifacts.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
