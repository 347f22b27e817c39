"""A throw-away certificate authority for https tests, made with the `openssl` command.

    ca = TestCA(tmp_path)
    server_context = ca.server_context("images.test")     # for HttpServer(tls=...)
    client_context = ca.client_context()                   # trusts only this CA

No Python crypto package is needed; tests skip when `openssl` is not installed.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


class TestCA:
    """A CA key and certificate in `directory`, able to issue server certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command is not installed")
        self.directory = directory
        self.ca_cert = directory / "ca.pem"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=facelens test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
            cwd=directory,
        )  # fmt: skip

    def issue(self, *names: str) -> tuple[Path, Path]:
        """(certificate, key) for a server known by these DNS names."""
        stem = "-".join(names) or "empty"
        ext = self.directory / f"{stem}.ext"
        ext.write_text(
            f"subjectAltName={','.join(f'DNS:{name}' for name in names)}\n"
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n"
        )
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={names[0]}",
            cwd=self.directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{stem}.pem", "-days", "2", "-extfile", ext.name,
            cwd=self.directory,
        )  # fmt: skip
        return self.directory / f"{stem}.pem", self.directory / f"{stem}.key"

    def server_context(self, *names: str) -> ssl.SSLContext:
        cert, key = self.issue(*names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies certificates and names like the default, trusting only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_cert))
