"""Credentials and connection settings for an artifact's storage.

In a pod, credentials come only from the Secrets a Model names (`credentialsSecret`), mounted
by the operator as `inferline.render.mounts` describes; without one, requests are anonymous
(public buckets). Locally (`inferline serve`), the standard environment variables count too
(`AWS_ACCESS_KEY_ID`..., `GOOGLE_APPLICATION_CREDENTIALS`): "ambient" credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..render import mounts


@dataclass(frozen=True)
class Secret:
    """The keys of one mounted Secret."""

    name: str
    data: dict[str, str] = field(repr=False)

    def get(self, key: str) -> str | None:
        value = self.data.get(key)
        return (
            value.strip() if value is not None and key != mounts.GCS_SERVICE_ACCOUNT_KEY else value
        )


@dataclass(frozen=True)
class CredentialSource:
    """Where the runtime looks for credentials: the Secrets root and, locally, the environment."""

    secrets_root: Path
    ambient: bool

    @classmethod
    def for_pod(cls, ambient: bool = False) -> CredentialSource:
        root = os.environ.get(mounts.SECRETS_ROOT_ENV, mounts.SECRETS_ROOT)
        return cls(Path(root), ambient)

    @classmethod
    def for_local(cls) -> CredentialSource:
        root = os.environ.get(mounts.SECRETS_ROOT_ENV, mounts.SECRETS_ROOT)
        return cls(Path(root), ambient=True)

    def secret(self, name: str) -> Secret:
        """Read Secret `name` from its mount: one file per key (dotfiles are the kubelet's)."""
        path = self.secrets_root / name
        if not path.is_dir():
            raise UserError(
                f"credentialsSecret {name!r}: not mounted at {path} (in a cluster the operator "
                f"mounts it; locally set {mounts.SECRETS_ROOT_ENV} to a directory holding "
                f"{name}/<key> files)"
            )
        data = {}
        for f in sorted(path.iterdir()):
            if f.name.startswith(".") or not f.is_file():
                continue
            try:
                data[f.name] = f.read_text()
            except (OSError, UnicodeDecodeError) as e:
                raise UserError(f"credentialsSecret {name!r}: cannot read key {f.name}: {e}") from e
        return Secret(name, data)

    def env(self, key: str) -> str | None:
        """An ambient environment variable, or None in a pod (credentials only from Secrets)."""
        return os.environ.get(key) if self.ambient else None
