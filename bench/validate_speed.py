"""How long `inferline validate` takes on large manifests (the goal: under 1 s for 1 MiB).

    .venv/bin/python bench/validate_speed.py [--sizes 64,256,1024,4096] [--runs 5]

Builds multi-document manifests of about the given sizes (KiB) from the repository's own valid
manifests (examples/readability and tests/data/valid, renamed per copy so every object is
distinct), then measures:
- the CLI as a user runs it (`inferline validate FILE` in a fresh process: start-up included),
  wall and CPU time (user + sys of the child), best and median of --runs;
- in process, where the time goes: reading YAML (api.yamlparse), checking each object against
  the schema (api.load), the semantic checks (api.validate).
CPU time is reported beside wall time because the development machines are shared: wall time
there depends on the neighbours, CPU time much less. Writes bench/results/validate_speed.md
and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = [
    REPO / "examples/readability/pipeline.yaml",
    REPO / "tests/data/valid/resnet50-ensemble.yaml",
]
RESULTS = REPO / "bench/results"


def build_manifest(kib: int) -> str:
    """About `kib` KiB of valid manifests: the sources over and over, each copy renamed."""
    import re

    texts = [p.read_text() for p in SOURCES]
    out, size, n = [], 0, 0
    while size < kib * 1024:
        for t in texts:
            # Every object and every reference to it gets the suffix; names stay DNS labels.
            copy = re.sub(r"(name: )(readability|resnet50|triton-gpu)", rf"\g<1>\g<2>-c{n}", t)
            out.append(copy)
            size += len(copy) + 4
        n += 1
    return "\n---\n".join(out)


def cli_run(path: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, last line of output) of one `inferline validate`."""
    exe = Path(sys.executable).with_name("inferline")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), "validate", str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"validate failed on {path}:\n{proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout.strip().splitlines()[-1]


def stages(text: str, path: Path) -> dict[str, float]:
    """CPU seconds per stage of one in-process validate."""
    from inferline.api.load import load_text
    from inferline.api.validate import validate_documents
    from inferline.api.yamlparse import parse_stream

    t0 = time.process_time()
    parse_stream(text)
    t1 = time.process_time()
    loaded = load_text(text, path)  # parses again, then checks every object
    t2 = time.process_time()
    problems, _ = validate_documents(loaded.documents)
    t3 = time.process_time()
    assert not [p for p in loaded.problems + problems if p.is_error]
    return {"yaml": t1 - t0, "schema": (t2 - t1) - (t1 - t0), "semantic": t3 - t2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="64,256,1024,4096", help="KiB, comma-separated")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kib in (int(s) for s in args.sizes.split(",")):
            text = build_manifest(kib)
            path = Path(tmp) / f"manifest-{kib}k.yaml"
            path.write_text(text)
            runs = [cli_run(path) for _ in range(args.runs)]
            walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
            st = stages(text, path)
            row = {
                "kib": round(len(text.encode()) / 1024),
                "objects": text.count("\nkind: ") + text.startswith("kind: "),
                "wall_best_s": round(min(walls), 3),
                "wall_median_s": round(statistics.median(walls), 3),
                "cpu_best_s": round(min(cpus), 3),
                "cpu_median_s": round(statistics.median(cpus), 3),
                **{f"{k}_cpu_s": round(v, 3) for k, v in st.items()},
                "output": runs[0][2],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    empty = Path(tempfile.gettempdir()) / "inferline-empty.yaml"
    empty.write_text(build_manifest(1).split("\n---\n")[0])
    startup = min(cli_run(empty)[1] for _ in range(args.runs))
    write(rows, startup, args.runs)


def write(rows: list[dict[str, object]], startup_cpu: float, runs: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    load = os.getloadavg()[0]
    meta = {"machine": machine, "load_average_1m": round(load, 1), "runs": runs}
    (RESULTS / "validate_speed.json").write_text(
        json.dumps({**meta, "startup_cpu_s": round(startup_cpu, 3), "rows": rows}, indent=1) + "\n"
    )
    lines = [
        "# `inferline validate` on large manifests",
        "",
        f"Machine: {machine}; 1-minute load average {load:.1f} when measured (a shared box: "
        "wall times depend on the neighbours, CPU times much less). Best and median of "
        f"{runs} runs of the CLI in a fresh process, start-up included (start-up alone, one "
        f"small object: {startup_cpu:.2f} s CPU). Stage columns: CPU seconds in process.",
        "",
        "| manifest | objects | wall best | wall median | CPU best | CPU median | YAML | schema "
        "| semantic |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kib']} KiB | {r['objects']} | {r['wall_best_s']} s | {r['wall_median_s']} s "
            f"| {r['cpu_best_s']} s | {r['cpu_median_s']} s | {r['yaml_cpu_s']} s "
            f"| {r['schema_cpu_s']} s | {r['semantic_cpu_s']} s |"
        )
    lines.append("")
    (RESULTS / "validate_speed.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
