"""A real `nft` for tests, run only inside a throwaway network namespace.

The machine's own nft when it has one, else Debian's nftables and libnftables1 packages
unpacked (`apt-get download` + `dpkg-deb -x`, nothing installed) into a cache directory. Every
command runs under `unshare --net` (as root; `unshare -rn`, a user namespace, otherwise), so
neither `nft -c` nor an applied rule set ever touches the machine's own rules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("nftables", "libnftables1")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "glassbox" / "nftables"


@dataclass(frozen=True)
class Nft:
    binary: Path
    library_path: str  # LD_LIBRARY_PATH for an unpacked nft ("" for the machine's own)

    def unshare(self) -> list[str]:
        return ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "-rn"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.library_path:
            env["LD_LIBRARY_PATH"] = self.library_path
        return env

    def script(self, body: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell script in a fresh network namespace; `$NFT` is this nft."""
        return subprocess.run(
            [*self.unshare(), "sh", "-euc", body],
            env={**self.env(), "NFT": str(self.binary)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wrapper_dir(self, directory: Path) -> Path:
        """A directory holding an `nft` that runs this one in a fresh network namespace (put it
        first on PATH: the role's `validate: nft -c -f %s` then checks with the real nft)."""
        directory.mkdir(parents=True, exist_ok=True)
        wrapper = directory / "nft"
        library = f"LD_LIBRARY_PATH={self.library_path} " if self.library_path else ""
        wrapper.write_text(
            f'#!/bin/sh\nexec {" ".join(self.unshare())} env {library}{self.binary} "$@"\n'
        )
        wrapper.chmod(0o755)
        return directory


def _unpacked() -> Nft:
    version = subprocess.run(
        ["apt-cache", "policy", "nftables"], capture_output=True, text=True, check=True
    ).stdout
    candidate = next(
        (ln.split(":", 1)[1].strip() for ln in version.splitlines() if "Candidate:" in ln), ""
    )
    if not candidate or candidate == "(none)":
        raise RuntimeError(
            "no nft on PATH and apt knows no nftables package (apt-get update?): "
            "the firewall tests need a real nft"
        )
    root = CACHE / candidate.replace(":", "_")
    binary = root / "usr" / "sbin" / "nft"
    if not binary.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root.parent) as download:
            subprocess.run(
                ["apt-get", "download", *PACKAGES],
                cwd=download,
                capture_output=True,
                text=True,
                check=True,
            )
            staging = Path(download) / "root"
            for deb in sorted(Path(download).glob("*.deb")):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
            staging.rename(root)
    libraries = [str(p.parent) for p in root.glob("usr/lib/*/libnftables.so.1")]
    return Nft(binary, ":".join(libraries))


def find_nft() -> Nft:
    own = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if Path(p).exists()), None
    )
    return Nft(Path(own), "") if own else _unpacked()
