#!/usr/bin/env bash
# The cost of following silent flows: fills a fresh namespace's table with FLOWS unreplied UDP
# flows made before the exporter starts (so all are silent), runs the exporter for SECONDS, and
# reports each dump's duration (from its log) and the exporter's CPU share while it only
# followed them (from /proc/PID/stat). Root; hold the kernel lock:
#
#   npm run build && flock /tmp/ctx-kernel.lock bash bench/silent-redump.sh [FLOWS=250000] [SECONDS=60]
#
# Above 262144 flows it raises the global nf_conntrack_max for the run and restores it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWS=${1:-250000}
SECONDS_RUN=${2:-60}
NS="ctx-bench-redump-$$"
MAXFILE=/proc/sys/net/netfilter/nf_conntrack_max
MAX0=$(cat "$MAXFILE")
RAISED=""
EXP=""
LOG=$(mktemp)
cleanup() {
  [ -n "$EXP" ] && kill "$EXP" 2>/dev/null && wait "$EXP" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  if [ -n "$RAISED" ]; then echo "$MAX0" >"$MAXFILE"; fi
  rm -f "$LOG"
}
trap cleanup EXIT
if [ "$FLOWS" -gt "$MAX0" ]; then
  if [ "$MAX0" != 262144 ]; then
    echo "nf_conntrack_max is $MAX0, not the usual 262144: another run is changing it; hold /tmp/ctx-kernel.lock" >&2
    exit 1
  fi
  RAISED=1
  echo $((FLOWS + 1000)) >"$MAXFILE"
fi
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" nft -f - <<'NFT'
table inet ctx {
  chain raw {
    type filter hook output priority raw; policy accept;
    tcp dport 9466 notrack
    tcp sport 9466 notrack
  }
  chain out {
    type filter hook output priority 0; policy accept;
    ct state new counter
  }
  chain in {
    type filter hook input priority 0; policy accept;
    udp dport 10000-59999 drop
  }
}
NFT
# Unreplied UDP flows live 30 s by default; keep them for the run.
ip netns exec "$NS" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3600
RATE=60000
ip netns exec "$NS" node dist/test/integration/harness/flood.js $((FLOWS / RATE + 1)) "$RATE" 256 >/dev/null
echo "flows in the table: $(ip netns exec "$NS" conntrack -C)"

ip netns exec "$NS" node dist/src/main.js --web.listen-address=127.0.0.1:9466 --log.format=json >"$LOG" &
EXP=$!
until grep -q '"reason":"startup"' "$LOG"; do sleep 0.2; done
ticks() { awk '{print $14 + $15}' "/proc/$EXP/stat"; }
T0=$(date +%s.%N)
C0=$(ticks)
sleep "$SECONDS_RUN"
C1=$(ticks)
T1=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
grep 'conntrack table synchronised' "$LOG" | node -e '
  const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const us = (s, n) => ((s * 1e6) / Math.max(1, n)).toFixed(2);
  for (const l of lines) console.log(`${l.reason.padEnd(8)} ${String(l.flows).padStart(8)} flows  ${l.seconds.toFixed(3)} s wall (${us(l.seconds, l.flows)} us/flow)  ${l.cpuSeconds.toFixed(3)} s CPU (${us(l.cpuSeconds, l.flows)} us/flow)`);
'
grep -o '"everySeconds":[0-9.]*' "$LOG" | head -1 || true
node -e "const cpu = ($C1 - $C0) / $HZ, wall = $T1 - $T0; console.log('exporter CPU after start-up: ' + cpu.toFixed(2) + ' s in ' + wall.toFixed(1) + ' s = ' + (100 * cpu / wall).toFixed(2) + '% of one core')"
