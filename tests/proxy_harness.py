"""What the proxy tests share: the distribution's caddy binary and a throwaway CA."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests import tls_certs
from tests.ansible_run import REPO


def caddy_binary() -> str:
    """The distribution's caddy binary, fetched into the cache on first use."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "test-host.sh"), "caddy"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"scripts/test-host.sh caddy failed:\n{proc.stderr}"
    path = proc.stdout.strip().splitlines()[-1]
    assert os.access(path, os.X_OK), path
    return path


def make_ca(tls_dir: Path, names: list[str]) -> None:
    """ca.crt, host.crt (SAN: names and 127.0.0.1) and host.key as tls_certificate lays them out."""
    ca = tls_certs.make_ca("glassbox contract test CA")
    leaf = tls_certs.make_leaf(ca, [*(f"DNS:{name}" for name in names), "IP:127.0.0.1"])
    tls_dir.mkdir(parents=True, exist_ok=True)
    (tls_dir / "ca.crt").write_text(ca.cert_pem)
    (tls_dir / "host.crt").write_text(leaf.cert_pem)
    (tls_dir / "host.key").write_text(leaf.key_pem)
