#!/usr/bin/env bash
# Wall time of a first converge of site.yml on a fresh Debian 13 target (Molecule default
# scenario, services in state "configured") and of a no-op re-run on the converged target.
# Prints a small table; asserts nothing about speed. Needs what `make test-molecule` needs.
#   usage: benchmarks/deploy_times.sh            (from the repo root, as root)
# Wall time depends on what else runs on the machine, so each step also gives figures that do
# not: the tasks the run went through (ok and skipped, from the recap), the module calls on the
# target (each one is a `docker exec` into the container: Docker's exec_create events, one line
# each by exec ID, as a raw task's command spans several lines), and the
# CPU seconds spent by the controller (Molecule and ansible-playbook) and inside the target.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export GLASSBOX_MOLECULE_INSTANCE="${GLASSBOX_MOLECULE_INSTANCE:-glassbox-bench}"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1
instance=$GLASSBOX_MOLECULE_INSTANCE
work=$(mktemp -d)

scripts/test-host.sh all
# CPU nanoseconds used so far inside the instance (cgroup v2 or v1); 0 before it exists.
target_cpu_ns() {
  local id file
  id=$(docker inspect -f '{{.Id}}' "$instance" 2>/dev/null) || { echo 0; return; }
  for file in /sys/fs/cgroup/system.slice/docker-"$id".scope/cpu.stat /sys/fs/cgroup/docker/"$id"/cpu.stat; do
    [ -r "$file" ] && { awk '/^usage_usec/ { print $2 * 1000 }' "$file"; return; }
  done
  file=/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage
  [ -r "$file" ] && { cat "$file"; return; }
  echo 0
}
# Tasks of the last recap, summed over its hosts (the target and the controller's localhost).
recap_tasks() {
  awk '/^PLAY RECAP/ { ok = 0; sk = 0; next }
       / : ok=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "ok") ok += kv[2]; if (kv[1] == "skipped") sk += kv[2] } }
       END { if (ok + sk) printf "ok=%d skipped=%d", ok, sk }' "$1"
}
timed() {  # label, command...
  local label=$1 log start end load0 cpu0 cpu1 events
  shift
  log="/tmp/glassbox-bench-${label// /_}.log"
  events="$work/${label// /_}.events"
  docker events --filter "container=$instance" --filter event=exec_create --format 'exec {{.Actor.Attributes.execID}}' >"$events" &
  local watcher=$!
  sleep 1
  load0=$(cut -d' ' -f1 /proc/loadavg)
  cpu0=$(target_cpu_ns)
  start=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$work/time" "$@" >"$log" 2>&1
  end=$(date +%s.%N)
  cpu1=$(target_cpu_ns)
  sleep 1
  kill "$watcher"
  awk -v l="$label" -v s="$start" -v e="$end" -v c0="$cpu0" -v c1="$cpu1" -v l0="$load0" \
    -v l1="$(cut -d' ' -f1 /proc/loadavg)" -v x="$(wc -l <"$events")" \
    -v r="$(recap_tasks "$log")" \
    -v ctl="$(awk '{ print $1 + $2 }' "$work/time")" \
    'BEGIN { printf "| %-32s | %7.1f s | %-19s | %6d | %6.1f s | %6.1f s | %4.1f-%4.1f |\n",
             l, e - s, r, x, ctl, (c0 > 0 ? (c1 - c0) / 1e9 : 0), l0, l1 }'
}
trap 'molecule destroy -s default >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
molecule destroy -s default >/dev/null 2>&1 || true
echo "| step                             |    wall | tasks               | module |  CPU    |  CPU    | load      |"
echo "|                                  |         | (recap)             |  calls | control | target  | (1 min)   |"
echo "|----------------------------------|---------|---------------------|--------|---------|---------|-----------|"
timed "create (container start)" molecule create -s default
timed "converge site.yml (first run)" molecule converge -s default
timed "converge site.yml again (no-op)" molecule converge -s default
noop="/tmp/glassbox-bench-converge_site.yml_again_(no-op).log"
grep -o 'changed=[0-9]*' "$noop" | sort | uniq -c | sed 's/^/  second run: /'
# profile_tasks' last timestamp line: ansible-playbook's own time, without Molecule's start-up.
grep -oE '\) +[0-9:.]+ \*+ *$' "$noop" | tail -n1 | awk '{ print "  ansible-playbook alone: " $2 }' || true
# The per-task profile (ansible.posix.profile_tasks, switched on in molecule.yml): slowest steps.
echo "  slowest tasks of the no-op run:"
sed -n '/TASKS RECAP/,/ROLES RECAP/p' "$noop" | grep -E ' -{3,} +[0-9.]+s$' | head -8 \
  | sed 's/^/    /' || echo "    (no profile in the log: is profile_tasks enabled?)"
# The per-role profile (ansible.posix.profile_roles, also switched on in molecule.yml).
echo "  slowest roles of the no-op run:"
sed -n '/ROLES RECAP/,/total -/p' "$noop" | grep -vE 'total -' | grep -E ' -{3,} +[0-9.]+s$' | head -8 \
  | sed 's/^/    /' || echo "    (no role profile in the log: is profile_roles enabled?)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
