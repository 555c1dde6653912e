#!/usr/bin/env bash
# What an idle namespace costs the exporter in --netns.all mode: RSS and CPU of one exporter
# following N extra empty namespaces, N = 0 and N = $1 (default 100), over $2 seconds (default 60)
# at the default scan interval. Run as root, after `npm run build`, under
# `flock /tmp/ctx-kernel.lock`. Creates namespaces ctx-cost-*, deletes them on exit.
set -euo pipefail
N=${1:-100}
SECS=${2:-60}
cd "$(dirname "$0")/.."
HZ=$(getconf CLK_TCK)
made=()
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  for ns in "${made[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
ip netns add ctx-cost-home-$$ && made+=(ctx-cost-home-$$)
ip -n ctx-cost-home-$$ link set lo up
measure() {
  ip netns exec ctx-cost-home-$$ node dist/src/main.js --netns.all --web.listen-address=127.0.0.1:9466 \
    --log.level=warn >/dev/null 2>&1 &
  pid=$!
  local tries=0
  until ip netns exec ctx-cost-home-$$ curl -sf 127.0.0.1:9466/readyz >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then echo "exporter not ready after 60 s" >&2; exit 1; fi
    sleep 0.2
  done
  sleep 12 # a first interval scan after start-up
  local followed
  followed=$(ip netns exec ctx-cost-home-$$ curl -s 127.0.0.1:9466/metrics | awk '/^conntrack_netns_followed /{print $2}')
  local t0 t1
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  sleep "$SECS"
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  local rss fds
  rss=$(awk '/^VmRSS/{print $2}' /proc/$pid/status)
  fds=$(ls /proc/$pid/fd | wc -l)
  echo "extra=$1 followed=$followed rss_kib=$rss fds=$fds cpu_ms_per_min=$(( (t1 - t0) * 1000 / HZ * 60 / SECS ))"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}
measure 0
for i in $(seq 1 "$N"); do ip netns add ctx-cost-$$-$i; made+=(ctx-cost-$$-$i); done
measure "$N"
