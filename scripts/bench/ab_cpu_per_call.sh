#!/usr/bin/env bash
# A/B of two `examples/serve` binaries at one redirect rate, alternating: CPU µs and context
# switches (voluntary + involuntary, every thread) per call, veertien alone on loopback.
#
#   scripts/bench/ab_cpu_per_call.sh A_BIN B_BIN [RATE=1000] [SECONDS=30] [ROUNDS=3]
# Prints: label (A/B), round, rate, CPU µs per call, context switches per call.
set -uo pipefail
A=$1; B=$2; RATE=${3:-1000}; SECS=${4:-30}; ROUNDS=${5:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$(mktemp -d)
cat > $D/v.toml <<TOML
node_id = "bench"
[sip]
udp = "127.0.0.1:25060"
tcp = "127.0.0.1:25060"
rate_limit_per_source = 10000000
rate_burst = 10000000
[store]
path = "$D/veertien.db"
[shutdown]
grace_secs = 2
[ivr]
speech = false
TOML
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
cs() { local t=0; for f in /proc/$1/task/*/status; do t=$((t + $(awk '/ctxt_switches/ {s+=$2} END {print s}' $f))); done; echo $t; }
for r in $(seq $ROUNDS); do for v in A B; do
  bin=$A; [ $v = B ] && bin=$B
  rm -rf $D/veertien.db $D/veertien.db-* $D/veertien.db.records-journal
  "$bin" $D/v.toml > $D/s.out 2> $D/s.log & P=$!; sleep 2
  c0=$(ticks $P); s0=$(cs $P)
  (cd $D && sipp 127.0.0.1:25060 -sf "$ROOT/crates/server/tests/sipp/redirect_uac.xml" -s 140111 -r $RATE -m $((RATE*SECS)) -nostdin > sipp.out 2>&1)
  c1=$(ticks $P); s1=$(cs $P); n=$((RATE*SECS))
  echo -e "$v\t$r\t$RATE\t$(echo "($c1-$c0)*1000000/$HZ/$n" | bc -l | xargs printf '%.1f')\t$(echo "($s1-$s0)/$n" | bc -l | xargs printf '%.2f')"
  kill $P; wait $P 2>/dev/null
done; done
