"""Object stores for artifact URIs (obstore: S3, GCS, HTTP) and one-line errors from theirs.

obstore wraps Apache Arrow's `object_store` (Rust): signed requests, retries with backoff on
5xx and dropped connections, ranged GETs, and no botocore (so no python-dateutil pin).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from obstore.exceptions import (
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import GCSStore, HTTPStore, S3Store

from ..api.model import AddressingStyle, StorageOptions
from ..errors import UserError
from ..render import mounts
from .credentials import CredentialSource, Secret

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

REMOTE_SCHEMES = ("s3", "gs", "http", "https")

# Request-level retries (5xx, connection errors, timeouts) inside obstore; a body cut mid-stream
# is resumed by download.py with a ranged GET.
RETRY: RetryConfig = {
    "max_retries": 4,
    "backoff": {
        "init_backoff": timedelta(milliseconds=200),
        "max_backoff": timedelta(seconds=10),
        "base": 2,
    },
    "retry_timeout": timedelta(minutes=3),
}
# No whole-request timeout (a model file may take many minutes); a stalled read fails instead.
CLIENT: ClientConfig = {
    "connect_timeout": timedelta(seconds=10),
    "read_timeout": timedelta(seconds=60),
    "timeout": timedelta(hours=24),
}


class FetchError(UserError):
    """An artifact could not be fetched or failed verification."""


@dataclass(frozen=True)
class Location:
    """An object (or a prefix) in a store."""

    store: ObjectStore
    path: str
    uri: str
    secret: str | None


def _client(endpoint: str | None, headers: dict[str, str] | None = None) -> ClientConfig:
    opts: ClientConfig = {**CLIENT}
    if endpoint and endpoint.startswith("http://"):
        opts["allow_http"] = True
    if headers:
        opts["default_headers"] = headers
    return opts


def _s3(bucket: str, secret: Secret | None, o: StorageOptions, src: CredentialSource) -> S3Store:
    kw: dict[str, Any] = {}
    endpoint = o.endpoint or (secret and secret.get(mounts.AWS_ENDPOINT_URL))
    endpoint = endpoint or src.env("AWS_ENDPOINT_URL")
    region = o.region or (secret and secret.get(mounts.AWS_REGION)) or src.env("AWS_REGION")
    kw["region"] = region or src.env("AWS_DEFAULT_REGION") or "us-east-1"
    if endpoint:
        kw["endpoint"] = endpoint
    if o.addressing_style:
        kw["virtual_hosted_style_request"] = o.addressing_style is AddressingStyle.VIRTUAL
    if secret is not None:
        key, sk = secret.get(mounts.AWS_ACCESS_KEY_ID), secret.get(mounts.AWS_SECRET_ACCESS_KEY)
        if not key or not sk:
            raise FetchError(
                f"credentialsSecret {secret.name!r}: s3:// needs keys "
                f"{mounts.AWS_ACCESS_KEY_ID} and {mounts.AWS_SECRET_ACCESS_KEY} "
                f"(it has: {', '.join(sorted(secret.data)) or 'none'})"
            )
        kw.update(access_key_id=key, secret_access_key=sk)
        if token := secret.get(mounts.AWS_SESSION_TOKEN):
            kw["session_token"] = token
    elif not (src.ambient and _aws_env_credentials()):
        kw["skip_signature"] = True  # anonymous: public buckets
    return S3Store(bucket, client_options=_client(endpoint), retry_config=RETRY, **kw)


def _aws_env_credentials() -> bool:
    keys = (
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    )
    return any(os.environ.get(k) for k in (*keys, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"))


def _gcs(bucket: str, secret: Secret | None, o: StorageOptions, src: CredentialSource) -> GCSStore:
    kw: dict[str, Any] = {}
    if o.endpoint:
        kw["base_url"] = o.endpoint.rstrip("/")
    if secret is not None:
        key = secret.get(mounts.GCS_SERVICE_ACCOUNT_KEY)
        if not key:
            raise FetchError(
                f"credentialsSecret {secret.name!r}: gs:// needs key "
                f"{mounts.GCS_SERVICE_ACCOUNT_KEY} (a service-account key file; it has: "
                f"{', '.join(sorted(secret.data)) or 'none'})"
            )
        try:
            parsed = json.loads(key)
            missing = [k for k in ("client_email", "private_key") if k not in parsed]
        except ValueError:
            missing = ["valid JSON"]
        if missing:
            raise FetchError(
                f"credentialsSecret {secret.name!r}: {mounts.GCS_SERVICE_ACCOUNT_KEY} is not a "
                f"service-account key (missing {', '.join(missing)})"
            )
        kw["service_account_key"] = key
    elif not (src.ambient and _gcp_env_credentials()):
        kw["skip_signature"] = True
    return GCSStore(bucket, client_options=_client(o.endpoint), retry_config=RETRY, **kw)


def _gcp_env_credentials() -> bool:
    adc = Path.home() / ".config" / "gcloud" / "application_default_credentials.json"
    return bool(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")) or adc.is_file()


def _http(url: str, secret: Secret | None) -> HTTPStore:
    headers = {}
    if secret is not None:
        headers = {
            k.removeprefix(mounts.HTTP_HEADER_PREFIX): v
            for k, v in secret.data.items()
            if k.startswith(mounts.HTTP_HEADER_PREFIX)
        }
        headers = {k: v.strip() for k, v in headers.items()}
        if not headers:
            raise FetchError(
                f"credentialsSecret {secret.name!r}: http(s):// reads keys named "
                f"{mounts.HTTP_HEADER_PREFIX}<Header-Name> (it has: "
                f"{', '.join(sorted(secret.data)) or 'none'})"
            )
    return HTTPStore(url, client_options=_client(url, headers), retry_config=RETRY)


def locate(
    uri: str, secret_name: str | None, options: StorageOptions, source: CredentialSource
) -> Location:
    """The store and path of a remote artifact URI, with its credentials."""
    parts = urlsplit(uri)
    try:
        secret = source.secret(secret_name) if secret_name else None
    except UserError as e:
        raise FetchError(f"{uri}: {e}") from None
    if parts.scheme == "s3":
        store: ObjectStore = _s3(parts.netloc, secret, options, source)
    elif parts.scheme == "gs":
        store = _gcs(parts.netloc, secret, options, source)
    elif parts.scheme in ("http", "https"):
        # The whole URL (query included: presigned URLs) is the store; the object is "".
        return Location(_http(uri, secret), "", uri, secret_name)
    else:
        raise FetchError(f"{uri}: not a remote URI (schemes: {', '.join(REMOTE_SCHEMES)})")
    if not parts.netloc:
        raise FetchError(f"{uri}: no bucket in the URI")
    return Location(store, parts.path.lstrip("/"), uri, secret_name)


# ---- errors ---------------------------------------------------------------------------------

_S3_CODE = re.compile(r"<Code>(\w+)</Code>")
_STATUS = re.compile(r"status code: (\d{3})")
_RETRIES = re.compile(r"after (\d+) retries")
_URL = re.compile(r"Error performing \w+ (https?://[^/\s]+)")


def error_code(e: BaseException) -> str | None:
    """The store's error code (S3/GCS XML `<Code>`), when the response carried one."""
    m = _S3_CODE.search(str(e))
    return m.group(1) if m else None


def explain(e: BaseException, loc: Location) -> FetchError:
    """A one-line error for a failed request, naming the URI, the Secret and the reason."""
    uri, secret = loc.uri, loc.secret
    code = error_code(e)
    suffix = f" ({code})" if code else ""
    if isinstance(e, NotFoundError | FileNotFoundError):
        if code == "NoSuchBucket":
            return FetchError(f"{uri}: not found: the bucket does not exist (NoSuchBucket)")
        return FetchError(f"{uri}: not found{suffix}")
    if isinstance(e, PermissionDeniedError | UnauthenticatedError):
        if secret is None:
            return FetchError(
                f"{uri}: access denied to anonymous requests{suffix}; name a Secret with "
                "credentials in the Model's credentialsSecret"
            )
        reason = {
            "InvalidAccessKeyId": "the server does not know the access key",
            "SignatureDoesNotMatch": "the secret key does not match the access key",
            "InvalidToken": "the session token is invalid",
            "ExpiredToken": "the session token has expired",
        }.get(code or "", "the credentials may not read this object")
        hint = ""
        if code == "AccessDenied" and uri.startswith("s3://"):
            hint = "; without s3:ListBucket, S3 also answers this for a missing key"
        return FetchError(
            f"{uri}: access denied: {reason} (credentialsSecret {secret!r}){suffix}{hint}"
        )
    if isinstance(e, BaseError | OSError | ConnectionError | TimeoutError):
        text = str(e)
        retries = _RETRIES.search(text)
        after = f" after {retries.group(1)} retries" if retries else ""
        if status := _STATUS.search(text):
            what = f"the server answered {status.group(1)}{suffix}{after}"
        elif url := _URL.search(text):
            # obstore appends a multi-line debug dump: keep the first line's last clause.
            cause = text.strip().splitlines()[0].rsplit(" - ", 1)[-1].strip()
            what = f"no answer from {url.group(1)}{after} ({cause})"
        else:
            what = _first_line(e)
        return FetchError(f"{uri}: cannot fetch: {what}")
    return FetchError(f"{uri}: cannot fetch: {type(e).__name__}: {_first_line(e)}")


def _first_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.strip().splitlines()[0][:300]


def is_permanent(e: BaseException) -> bool:
    """Errors that no retry will fix: missing objects, refused credentials."""
    return isinstance(
        e, NotFoundError | FileNotFoundError | PermissionDeniedError | UnauthenticatedError
    )
