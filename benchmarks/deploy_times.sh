#!/usr/bin/env bash
# Wall time of a first converge of site.yml on a fresh Debian 13 target (Molecule default
# scenario, services in state "configured") and of a no-op re-run on the converged target.
# Prints a small table; asserts nothing about speed. Needs what `make test-molecule` needs.
#   usage: benchmarks/deploy_times.sh            (from the repo root, as root)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export GLASSBOX_MOLECULE_INSTANCE="${GLASSBOX_MOLECULE_INSTANCE:-glassbox-bench}"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1

scripts/test-host.sh all
timed() {  # label, command...
  local label=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >"/tmp/glassbox-bench-${label// /_}.log" 2>&1
  end=$(date +%s.%N)
  awk -v l="$label" -v s="$start" -v e="$end" 'BEGIN { printf "| %-34s | %7.1f s |\n", l, e - s }'
}
trap 'molecule destroy -s default >/dev/null 2>&1 || true' EXIT
molecule destroy -s default >/dev/null 2>&1 || true
echo "| step                               |    wall |"
echo "|------------------------------------|---------|"
timed "create (container start)" molecule create -s default
timed "converge site.yml (first run)" molecule converge -s default
timed "converge site.yml again (no-op)" molecule converge -s default
grep -o 'changed=[0-9]*' /tmp/glassbox-bench-converge_site.yml_again_\(no-op\).log | sort | uniq -c \
  | sed 's/^/  second run: /'
# The per-task profile (ansible.posix.profile_tasks, switched on in molecule.yml): slowest steps.
echo "  slowest tasks of the no-op run:"
grep -E ' -{3,} +[0-9.]+s$' /tmp/glassbox-bench-converge_site.yml_again_\(no-op\).log | head -8 \
  | sed 's/^/    /' || echo "    (no profile in the log: is profile_tasks enabled?)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
