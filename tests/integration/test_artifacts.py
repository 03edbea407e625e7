"""Model artifacts from real object stores: moto's S3 (IAM and SigV4 checked) and
fake-gcs-server, both on loopback behind a proxy that counts requests and can cut connections.

What a pod would see: credentials from mounted Secret directories, one-line errors, resumed
downloads, a shared cache, and a served pipeline whose models come from both stores.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from inferline.api.model import StorageOptions
from inferline.runtime.cache import ArtifactCache
from inferline.runtime.credentials import CredentialSource
from inferline.runtime.download import Retry
from inferline.runtime.fetch import Artifact, FetchError, FetchOptions, fetch_all
from inferline.runtime.tritonserver import free_port

from ..conftest import run_cli
from .conftest import stray_tritonservers
from .objectstores import MotoS3, Proxy, fake_gcs, moto_s3

pytestmark = pytest.mark.integration

BIG = 24 << 20  # large enough for several chunks and a cut in the middle


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("objectstores")


@pytest.fixture(scope="module")
def big() -> bytes:
    return np.random.default_rng(1).bytes(BIG)


@pytest.fixture(scope="module")
def trees() -> dict[str, tuple[bytes, object]]:
    """Two small xgboost models (JSON) and their boosters: one for each store."""
    return {"s3": train_trees(0), "gcs": train_trees(1)}


@pytest.fixture(scope="module")
def s3(workdir: Path, big: bytes, trees: dict[str, tuple[bytes, object]]) -> Iterator[MotoS3]:
    """Buckets `models` (readable by user `reader`) and `private` (not), then auth on: every
    later request is checked (SigV4 signature, access key, IAM policy)."""
    with moto_s3(workdir / "moto.log") as server:
        c = server.client()
        for bucket in ("models", "private"):
            c.create_bucket(Bucket=bucket)
        c.put_object(Bucket="models", Key="big.bin", Body=big)
        c.put_object(Bucket="models", Key="trees/model.json", Body=trees["s3"][0])
        c.put_object(Bucket="models", Key="tok/vocab.txt", Body=b"a\nb\n")
        c.put_object(Bucket="models", Key="tok/sub/merges.txt", Body=b"a b\n")
        c.put_object(Bucket="private", Key="m.bin", Body=b"secret weights")
        keys = server.reader("reader", ["models"])
        secrets = workdir / "secrets"
        write_secret(
            secrets / "s3-reader",
            AWS_ACCESS_KEY_ID=keys.access_key_id,
            AWS_SECRET_ACCESS_KEY=keys.secret_access_key,
        )
        write_secret(
            secrets / "s3-wrong-secret",
            AWS_ACCESS_KEY_ID=keys.access_key_id,
            AWS_SECRET_ACCESS_KEY="not-the-secret",
        )
        write_secret(
            secrets / "s3-unknown-key",
            AWS_ACCESS_KEY_ID="AKIAUNKNOWNKEY000000",
            AWS_SECRET_ACCESS_KEY=keys.secret_access_key,
        )
        server.require_auth()
        yield server


@pytest.fixture
def s3_proxy(s3: MotoS3) -> Iterator[Proxy]:
    u = urlsplit(s3.endpoint)
    proxy = Proxy((u.hostname or "127.0.0.1", u.port or 80)).start()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def gcs_server(workdir: Path, trees: dict[str, tuple[bytes, object]]) -> Iterator[Proxy]:
    """fake-gcs-server with bucket `gmodels`, behind a proxy (module-wide: see fake_gcs)."""
    proxy = Proxy(("127.0.0.1", 0)).start()
    with fake_gcs(workdir / "fake-gcs.log", proxy) as server:
        server.create_bucket("gmodels")
        server.upload("gmodels", "vocab.txt", b"x\ny\n")
        server.upload("gmodels", "trees/model.json", trees["gcs"][0])
        yield proxy
    proxy.close()


@pytest.fixture
def gcs_proxy(gcs_server: Proxy) -> Proxy:
    gcs_server.reset()
    return gcs_server


def write_secret(d: Path, **keys: str) -> None:
    """A Secret as the kubelet mounts it: files behind a ..data symlink."""
    data = d / "..2026_01_01_00_00_00.000000000"
    data.mkdir(parents=True)
    (d / "..data").symlink_to(data.name)
    for k, v in keys.items():
        (data / k).write_text(v)
        (d / k).symlink_to(f"..data/{k}")


def options(workdir: Path, cache: Path | None = None, **kw: object) -> FetchOptions:
    return FetchOptions(
        credentials=CredentialSource(workdir / "secrets", ambient=False),
        cache=ArtifactCache(cache) if cache else None,
        **kw,  # type: ignore[arg-type]
    )


def s3_artifact(proxy: Proxy, key: str, dest: Path, secret: str | None = "s3-reader", **kw: object):  # type: ignore[no-untyped-def]
    return Artifact(
        f"s3://{key}",
        dest,
        credentials_secret=secret,
        storage=StorageOptions(endpoint=proxy.endpoint),
        **kw,  # type: ignore[arg-type]
    )


# ---- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "secret", "sha256", "message"),
    [
        ("models/nope.bin", "s3-reader", None, "s3://models/nope.bin: not found"),
        (
            "private/m.bin",
            "s3-reader",
            None,
            "s3://private/m.bin: access denied: the credentials may not read this object "
            "(credentialsSecret 's3-reader') (AccessDenied)",
        ),
        (
            "models/big.bin",
            "s3-wrong-secret",
            None,
            "s3://models/big.bin: access denied: the secret key does not match the access key "
            "(credentialsSecret 's3-wrong-secret') (SignatureDoesNotMatch)",
        ),
        (
            "models/big.bin",
            "s3-unknown-key",
            None,
            "s3://models/big.bin: access denied: the server does not know the access key "
            "(credentialsSecret 's3-unknown-key') (InvalidAccessKeyId)",
        ),
        (
            "models/big.bin",
            None,
            None,
            "s3://models/big.bin: access denied to anonymous requests; name a Secret with "
            "credentials in the Model's credentialsSecret",
        ),
        (
            "models/big.bin",
            "s3-reader",
            "0" * 64,
            "s3://models/big.bin: sha256 mismatch: got {big_sha}, the Model says " + "0" * 64,
        ),
        (
            "models/big.bin",
            "no-such-secret",
            None,
            "s3://models/big.bin: credentialsSecret 'no-such-secret': not mounted at ",
        ),
    ],
    ids=[
        "missing",
        "denied-bucket",
        "wrong-secret",
        "unknown-key",
        "anonymous",
        "corrupt",
        "unmounted",
    ],
)
def test_s3_failures_are_one_line_and_leave_nothing(
    s3_proxy: Proxy,
    workdir: Path,
    tmp_path: Path,
    big: bytes,
    key: str,
    secret: str | None,
    sha256: str | None,
    message: str,
) -> None:
    repo = tmp_path / "repo"
    cache = tmp_path / "cache"
    for cache_dir in (None, cache):  # straight into the repository, and through the cache
        with pytest.raises(FetchError) as e:
            fetch_all(
                [s3_artifact(s3_proxy, key, repo / "m" / "1" / "model.bin", secret, sha256=sha256)],
                options(workdir, cache_dir),
            )
        text = str(e.value)
        assert text.startswith(message.format(big_sha=hashlib.sha256(big).hexdigest())), text
        assert "\n" not in text
        assert [p for p in repo.rglob("*") if p.is_file()] == []  # not even a .partial
    assert not list((cache / "blobs" / "sha256").iterdir())  # nothing unverified was cached


def test_ambient_credentials_count_locally_only(
    s3: MotoS3, s3_proxy: Proxy, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inferline serve` uses the AWS_* environment; a pod uses only the Model's Secret."""
    secret = workdir / "secrets" / "s3-reader"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", (secret / "AWS_ACCESS_KEY_ID").read_text())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", (secret / "AWS_SECRET_ACCESS_KEY").read_text())
    art = s3_artifact(s3_proxy, "models/tok/vocab.txt", tmp_path / "v", secret=None)
    local = FetchOptions(CredentialSource(tmp_path, ambient=True))
    fetch_all([art], local)
    assert (tmp_path / "v").read_bytes() == b"a\nb\n"
    with pytest.raises(FetchError, match="access denied to anonymous requests"):
        fetch_all([art], FetchOptions(CredentialSource(tmp_path, ambient=False)))


def test_s3_prefix_is_a_directory(s3_proxy: Proxy, workdir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "tok"
    stats = fetch_all([s3_artifact(s3_proxy, "models/tok", dest)], options(workdir))
    assert (dest / "vocab.txt").read_bytes() == b"a\nb\n"
    assert (dest / "sub" / "merges.txt").read_bytes() == b"a b\n"
    assert stats.files == 2


# ---- resumes ----------------------------------------------------------------------------------


def test_a_cut_download_resumes_where_it_stopped(
    s3_proxy: Proxy, workdir: Path, tmp_path: Path, big: bytes
) -> None:
    s3_proxy.cut(after_bytes=5 << 20, path_contains="big.bin")
    dest = tmp_path / "big.bin"
    sha = hashlib.sha256(big).hexdigest()
    stats = fetch_all(
        [s3_artifact(s3_proxy, "models/big.bin", dest, sha256=sha)],
        options(workdir, retry=Retry(backoff_s=0.05)),
    )
    assert dest.read_bytes() == big
    assert s3_proxy.cuts == 1
    gets = [r for r in s3_proxy.requests if r.method == "GET"]
    assert len(gets) == 2
    start = int(gets[1].headers["range"].removeprefix("bytes=").split("-")[0])
    assert 4 << 20 < start < 5 << 20  # from where the cut left it, not from zero
    assert stats.downloaded_bytes == BIG  # each byte once


def test_more_cuts_than_the_client_retries_resume_from_the_file(
    s3_proxy: Proxy, workdir: Path, tmp_path: Path, big: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """obstore resumes a cut body itself a few times; past that, the runtime goes on from the
    bytes already on disk."""
    s3_proxy.cut(after_bytes=2 << 20, path_contains="big.bin", times=8)
    dest = tmp_path / "big.bin"
    stats = fetch_all(
        [s3_artifact(s3_proxy, "models/big.bin", dest)],
        options(workdir, retry=Retry(attempts=5, backoff_s=0.05)),
    )
    assert dest.read_bytes() == big
    assert s3_proxy.cuts == 8
    assert "interrupted at" in caplog.text  # the runtime's own resume ran
    starts = [
        int(r.headers["range"].removeprefix("bytes=").split("-")[0])
        for r in s3_proxy.requests
        if r.method == "GET" and "range" in r.headers
    ]
    assert len(starts) == 8 and starts == sorted(starts) and starts[0] > 0
    assert stats.downloaded_bytes == BIG  # each byte once


def test_a_download_cut_in_one_run_resumes_in_the_next(
    s3_proxy: Proxy, workdir: Path, tmp_path: Path, big: bytes
) -> None:
    """A pod that gives up (or is killed) mid-download leaves its partial file in the cache;
    the next pod goes on from there."""
    cache = tmp_path / "cache"
    s3_proxy.cut(after_bytes=3 << 20, path_contains="big.bin", times=1000)
    with pytest.raises(
        FetchError, match=r"gave up after 1 attempts; .* MB kept for the next start"
    ):
        fetch_all(
            [s3_artifact(s3_proxy, "models/big.bin", tmp_path / "a" / "big.bin")],
            options(workdir, cache, retry=Retry(attempts=1)),
        )
    assert not (tmp_path / "a" / "big.bin").exists()
    (partial,) = (cache / "partial").iterdir()
    kept = partial.stat().st_size
    assert kept > 3 << 20
    s3_proxy.cut(0, "", times=0)
    s3_proxy.reset()
    stats = fetch_all(
        [s3_artifact(s3_proxy, "models/big.bin", tmp_path / "b" / "big.bin")],
        options(workdir, cache),
    )
    assert (tmp_path / "b" / "big.bin").read_bytes() == big
    (get,) = [r for r in s3_proxy.requests if r.method == "GET"]
    assert get.headers["range"].startswith(f"bytes={kept}-")
    assert stats.downloaded_bytes == BIG - kept
    assert not list((cache / "partial").iterdir())


# ---- the cache --------------------------------------------------------------------------------


def test_second_fetch_comes_from_the_cache(
    s3_proxy: Proxy, workdir: Path, tmp_path: Path, big: bytes
) -> None:
    cache = tmp_path / "cache"
    sha = hashlib.sha256(big).hexdigest()
    fetch_all(
        [s3_artifact(s3_proxy, "models/big.bin", tmp_path / "1" / "m")], options(workdir, cache)
    )
    s3_proxy.reset()
    # Without a sha256: one HEAD to learn the ETag, no GET.
    stats = fetch_all(
        [s3_artifact(s3_proxy, "models/big.bin", tmp_path / "2" / "m")], options(workdir, cache)
    )
    assert [r.method for r in s3_proxy.requests] == ["HEAD"]
    assert stats.cached_files == 1 and stats.downloaded_bytes == 0
    # With the sha256 the Model states: no request at all.
    s3_proxy.reset()
    fetch_all(
        [s3_artifact(s3_proxy, "models/big.bin", tmp_path / "3" / "m", sha256=sha)],
        options(workdir, cache),
    )
    assert s3_proxy.requests == []
    assert (tmp_path / "3" / "m").read_bytes() == big
    # Same filesystem: the repository file is a hard link to the cached blob, not a copy.
    assert (tmp_path / "3" / "m").stat().st_ino == (cache / "blobs" / "sha256" / sha).stat().st_ino


FETCH_ONE = """
import sys
from pathlib import Path
from inferline.api.model import StorageOptions
from inferline.runtime.cache import ArtifactCache
from inferline.runtime.credentials import CredentialSource
from inferline.runtime.fetch import Artifact, FetchOptions, fetch_all

secrets, cache, endpoint, dest = sys.argv[1:]
art = Artifact("s3://models/big.bin", Path(dest), credentials_secret="s3-reader",
               storage=StorageOptions(endpoint=endpoint))
opts = FetchOptions(CredentialSource(Path(secrets), ambient=False), ArtifactCache(Path(cache)))
print(fetch_all([art], opts).summary())
"""


def test_two_replicas_sharing_a_cache_download_once(
    s3_proxy: Proxy, workdir: Path, tmp_path: Path, big: bytes
) -> None:
    """Two processes start together on one cache volume: one downloads, the other waits."""
    s3_proxy.delay_per_chunk_s = 0.004  # ~1.5 s per download, so the two runs overlap
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                FETCH_ONE,
                str(workdir / "secrets"),
                str(cache),
                s3_proxy.endpoint,
                str(tmp_path / f"replica{i}" / "big.bin"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for i in range(2):
        assert (tmp_path / f"replica{i}" / "big.bin").read_bytes() == big
    assert s3_proxy.count("GET") == 1, outs  # the object's bytes crossed the network once
    assert sorted("1 from the cache" in o for o in outs) == [False, True], outs


# ---- GCS --------------------------------------------------------------------------------------


def service_account(tmp_path: Path) -> tuple[dict[str, str], object]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    sa = {
        "type": "service_account",
        "project_id": "inferline-test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "reader@inferline-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",  # never called: requests carry self-signed JWTs
    }
    return sa, key.public_key()


def verify_jwt(token: str, public_key: object) -> dict[str, object]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(s: str) -> bytes:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    header, payload, signature = token.split(".")
    public_key.verify(  # type: ignore[attr-defined]
        b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return json.loads(b64(payload))


def test_gcs_with_a_service_account_secret(gcs_proxy: Proxy, tmp_path: Path) -> None:
    sa, public_key = service_account(tmp_path)
    write_secret(tmp_path / "secrets" / "gcs-reader", **{"service-account.json": json.dumps(sa)})
    write_secret(tmp_path / "secrets" / "gcs-broken", **{"service-account.json": "{}"})
    storage = StorageOptions(endpoint=gcs_proxy.endpoint)
    opts = FetchOptions(CredentialSource(tmp_path / "secrets", ambient=False))
    dest = tmp_path / "vocab.txt"
    fetch_all([Artifact("gs://gmodels/vocab.txt", dest, None, "gcs-reader", storage)], opts)
    assert dest.read_bytes() == b"x\ny\n"
    auth = {r.headers.get("authorization", "") for r in gcs_proxy.requests}
    (token,) = {a.removeprefix("Bearer ") for a in auth}
    claims = verify_jwt(token, public_key)  # signed with the Secret's key
    assert claims["iss"] == sa["client_email"]

    gcs_proxy.reset()
    fetch_all([Artifact("gs://gmodels/vocab.txt", tmp_path / "anon", None, None, storage)], opts)
    assert all("authorization" not in r.headers for r in gcs_proxy.requests)  # anonymous

    with pytest.raises(FetchError, match=r"^gs://gmodels/nope.bin: not found$"):
        fetch_all([Artifact("gs://gmodels/nope.bin", tmp_path / "x", None, None, storage)], opts)
    with pytest.raises(
        FetchError,
        match=r"credentialsSecret 'gcs-broken': service-account.json is not a service-account "
        r"key \(missing client_email, private_key\)$",
    ):
        fetch_all(
            [Artifact("gs://gmodels/vocab.txt", tmp_path / "y", None, "gcs-broken", storage)], opts
        )


# ---- a served pipeline ------------------------------------------------------------------------

PIPELINE = """
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: stores}
spec:
  backend: {name: inferline-cpu}
  placement: {device: CPU}
  maxBatchSize: 8
  inputs: [{name: X, dtype: FP32, dims: [4]}]
  outputs: [{name: S3, dtype: FP32, dims: [1]}, {name: GCS, dtype: FP32, dims: [1]}]
  steps:
    - name: from-s3
      model:
        format: fil
        storageUri: s3://models/trees/model.json
        credentialsSecret: s3-reader
        storage: {endpoint: "%(s3)s", region: us-east-1, addressingStyle: path}
        tree: {modelType: xgboost_json}
        maxBatchSize: 8
        inputs: [{name: input__0, dtype: FP32, dims: [4]}]
        outputs: [{name: output__0, dtype: FP32, dims: [1]}]
      inputMap: {input__0: X}
      outputMap: {output__0: S3}
    - name: from-gcs
      model:
        format: fil
        storageUri: gs://gmodels/trees/model.json
        sha256: "%(gcs_sha)s"
        credentialsSecret: gcs-reader
        storage: {endpoint: "%(gcs)s"}
        tree: {modelType: xgboost_json}
        maxBatchSize: 8
        inputs: [{name: input__0, dtype: FP32, dims: [4]}]
        outputs: [{name: output__0, dtype: FP32, dims: [1]}]
      inputMap: {input__0: X}
      outputMap: {output__0: GCS}
"""


def train_trees(seed: int) -> tuple[bytes, object]:
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = x[:, 0] * (seed + 1) - x[:, 1] + 0.1 * rng.normal(size=300)
    booster = xgboost.train(
        {"max_depth": 3, "eta": 0.3, "seed": 0}, xgboost.DMatrix(x, label=y), num_boost_round=10
    )
    return bytes(booster.save_raw("json")), booster


def start_runtime(rendered: Path, repo: Path, cache: Path, secrets: Path, log: Path, http: int):  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inferline.runtime",
            "--rendered",
            str(rendered),
            "--repository",
            str(repo),
            "--cache-dir",
            str(cache),
            "--address",
            "127.0.0.1",
            "--http-port",
            str(http),
            "--grpc-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "INFERLINE_SECRETS_ROOT": str(secrets)},
    )


def wait_serving(proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if "serving on http" in log.read_text(errors="replace"):
            return time.monotonic() - start
        if proc.poll() is not None:
            raise AssertionError(f"runtime exited ({proc.returncode}): {log.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"not serving after {timeout}s: {log.read_text()}")


def infer(http: int, x: np.ndarray) -> dict[str, np.ndarray]:
    body = {
        "inputs": [
            {"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
        ]
    }
    req = urllib.request.Request(
        f"http://127.0.0.1:{http}/v2/models/stores/infer", data=json.dumps(body).encode()
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.loads(resp.read())
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in out["outputs"]}


def test_pipeline_from_s3_and_gcs_serves_then_restarts_from_the_cache(
    s3_proxy: Proxy,
    gcs_proxy: Proxy,
    trees: dict[str, tuple[bytes, object]],
    workdir: Path,
    tmp_path: Path,
) -> None:
    import xgboost

    (_, s3_booster), (gcs_model, gcs_booster) = trees["s3"], trees["gcs"]
    sa, _ = service_account(tmp_path)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "s3-reader").symlink_to(workdir / "secrets" / "s3-reader")
    write_secret(secrets / "gcs-reader", **{"service-account.json": json.dumps(sa)})

    manifest = tmp_path / "stores.yaml"
    manifest.write_text(
        PIPELINE
        % {
            "s3": s3_proxy.endpoint,
            "gcs": gcs_proxy.endpoint,
            "gcs_sha": hashlib.sha256(gcs_model).hexdigest(),
        }
    )
    r = run_cli("render", str(manifest), "-o", str(tmp_path / "rendered"))
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    want = {
        "S3": s3_booster.predict(xgboost.DMatrix(x)).reshape(-1, 1),
        "GCS": gcs_booster.predict(xgboost.DMatrix(x)).reshape(-1, 1),
    }
    cache = tmp_path / "cache"
    seconds = {}
    for run in ("cold", "cached"):
        s3_proxy.reset()
        gcs_proxy.reset()
        log, http = tmp_path / f"{run}.log", free_port()
        proc = start_runtime(
            tmp_path / "rendered", tmp_path / f"models-{run}", cache, secrets, log, http
        )
        try:
            seconds[run] = wait_serving(proc, log)
            got = infer(http, x)
            for name in want:
                np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if run == "cold":
            assert s3_proxy.count("GET") == 1 and gcs_proxy.count("GET") == 1
        else:
            # S3 (no sha256): one HEAD for the ETag; GCS (sha256 given): nothing.
            assert [r.method for r in s3_proxy.requests] == ["HEAD"]
            assert gcs_proxy.requests == []
            assert log.read_text().count(": from the cache (") == 2
    print(f"time to serving: cold {seconds['cold']:.1f}s, from the cache {seconds['cached']:.1f}s")
    assert stray_tritonservers(tmp_path) == []


def test_runtime_never_serves_a_partial_repository(
    s3_proxy: Proxy, workdir: Path, tmp_path: Path
) -> None:
    """One artifact arrives, one is missing: the pod exits with one line and no repository."""
    pipeline = PIPELINE % {"s3": s3_proxy.endpoint, "gcs": "", "gcs_sha": ""}
    s3_step, _, _ = pipeline.partition("    - name: from-gcs")
    missing = (
        s3_step.split("  steps:\n")[1]
        .replace("from-s3", "missing")
        .replace("trees/model.json", "trees/missing.json")
    )
    manifest = tmp_path / "p.yaml"
    manifest.write_text(s3_step + missing.replace("output__0: S3", "output__0: GCS"))
    r = run_cli("render", str(manifest), "-o", str(tmp_path / "rendered"))
    assert r.returncode == 0, r.stderr
    log = tmp_path / "runtime.log"
    proc = start_runtime(
        tmp_path / "rendered",
        tmp_path / "models",
        tmp_path / "cache",
        workdir / "secrets",
        log,
        free_port(),
    )
    assert proc.wait(timeout=120) == 1
    text = log.read_text()
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith("s3://models/trees/missing.json: not found"), (
        text
    )
    assert not (tmp_path / "models").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".models")]  # no staging left
    assert stray_tritonservers(tmp_path) == []
