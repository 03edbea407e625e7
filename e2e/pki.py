"""Certificates and keys for the e2e control plane, made with the openssl CLI.

One throwaway CA signs the apiserver's serving cert and a client cert per component, so RBAC
sees the same identities as on a kubeadm cluster (system:kube-scheduler, ...). ECDSA P-256 keys:
generating them is instant, unlike RSA.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# openssl's default config may add CA extensions to every cert; use one of our own.
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""
_DAYS = "3650"


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{proc.stderr}")


def _new_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path,
        cwd=path.parent,
    )  # fmt: skip
    path.chmod(0o600)


class PKI:
    """A CA in `directory` that issues serving and client certificates."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._cnf = self.dir / "openssl.cnf"
        self._cnf.write_text(_OPENSSL_CNF)
        self.ca = KeyPair(self.dir / "ca.crt", self.dir / "ca.key")
        _new_key(self.ca.key)
        _openssl(
            "req", "-x509", "-new", "-config", self._cnf, "-key", self.ca.key, "-days", _DAYS,
            "-subj", "/CN=inferline-e2e-ca", "-extensions", "ca",
            "-out", self.ca.cert, cwd=self.dir,
        )  # fmt: skip

    def _ext(self, name: str, body: str) -> Path:
        path = self.dir / f"{name}.ext"
        path.write_text("[v3]\n" + body)
        return path

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        organization: str | None = None,
        server_sans: list[str] | None = None,
    ) -> KeyPair:
        """A CA-signed cert: for serving when `server_sans` is given, else for a client."""
        pair = KeyPair(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        _new_key(pair.key)
        subject = (f"/O={organization}" if organization else "") + f"/CN={common_name}"
        csr = self.dir / f"{name}.csr"
        _openssl(
            "req", "-new", "-config", self._cnf, "-key", pair.key, "-subj", subject, "-out", csr,
            cwd=self.dir,
        )  # fmt: skip
        body = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        if server_sans:
            body += "extendedKeyUsage=serverAuth\nsubjectAltName=" + ",".join(server_sans) + "\n"
        else:
            body += "extendedKeyUsage=clientAuth\n"
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key,
            "-CAcreateserial", "-days", _DAYS, "-extensions", "v3",
            "-extfile", self._ext(name, body), "-out", pair.cert, cwd=self.dir,
        )  # fmt: skip
        return pair

    def service_account_keys(self) -> KeyPair:
        """The key pair that signs (key) and verifies (cert: the public key) SA tokens."""
        pair = KeyPair(self.dir / "sa.pub", self.dir / "sa.key")
        _new_key(pair.key)
        _openssl("pkey", "-in", pair.key, "-pubout", "-out", pair.cert, cwd=self.dir)
        return pair
