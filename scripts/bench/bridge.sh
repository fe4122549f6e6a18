#!/usr/bin/env bash
# Bridge load benchmark: SIPp on loopback calls a 14+ number whose municipality is delivered by
# bridging; veertien (B2BUA + RTP relay sockets per call) calls a SIPp "contact centre" behind
# the outbound trunk that answers at once; each call lasts HOLD ms and the caller hangs up.
# Kamailio has no equivalent without rtpengine, so this one runs veertien alone; the redirect
# comparison is scripts/bench/redirect.sh.
#
#   scripts/bench/bridge.sh [RATES] [SECONDS_PER_STEP] [HOLD_MS]
#   e.g. scripts/bench/bridge.sh "100 200 400 800" 10 1000
#
# Per rate: calls/s achieved, failed calls, server CPU µs per call (utime+stime of the server
# process), memory (Pss) after the step, and delay p50/p95 (SIPp INVITE → 200, i.e. the added
# delay of the bridge since the contact centre answers in 0 ms).
# Results: target/bench-bridge/results.tsv (+ SIPp logs).
set -euo pipefail
RATES=${1:-"100 200 400 800 1200"}
STEP=${2:-10}
HOLD=${3:-1000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/target/bench-bridge
rm -rf "$OUT"; mkdir -p "$OUT"
NUMBER=140111   # unique area code (Schouwen-Duiveland, GM1676): bridged by the settings below
VPORT=25160; TRUNK=25460

command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
# VEERTIEN_SERVE_BIN: a prebuilt binary (e.g. to compare two builds); default: build it.
VBIN=${VEERTIEN_SERVE_BIN:-}
if [ -z "$VBIN" ]; then
  (cd "$ROOT" && cargo build --release -q -p veertien-server --example serve)
  VBIN=$ROOT/target/release/examples/serve
fi

printf '[municipality.GM1676]\nmode = "bridge"\n' > "$OUT/settings.toml"
printf 'SEQUENTIAL\n%s;\n' "$NUMBER" > "$OUT/numbers.csv"
cat > "$OUT/veertien.toml" <<TOML
node_id = "bench"
[sip]
udp = "127.0.0.1:$VPORT"
tcp = "127.0.0.1:$VPORT"
rate_limit_per_source = 10000000
rate_burst = 10000000
[store]
path = "$OUT/veertien.db"
[plan]
settings = "$OUT/settings.toml"
[trunk]
outbound = "127.0.0.1:$TRUNK"
[shutdown]
grace_secs = 5
# The SIPp contact centre answers INVITEs only; OPTIONS probes would mark it dead.
[health]
enabled = false
# Bridging only: the speech model (~260 MB once installed) plays no part.
[ivr]
speech = false
# Relay ports away from the SIPp peers' signalling and media ports (25xxx).
[rtp]
port_min = 40000
port_max = 59999
TOML
# The bridged calls' answer is SIPp's; its hold time makes the concurrency: rate × HOLD.
sed "s/<pause milliseconds=\"2000\" \/>/<pause milliseconds=\"$HOLD\" \/>/" "$ROOT/scripts/load/bridge_uac.xml" > "$OUT/bridge_uac.xml"

"$VBIN" "$OUT/veertien.toml" > "$OUT/veertien.stdout" 2> "$OUT/veertien.log" &
VPID=$!
(cd "$OUT" && exec sipp -sf "$ROOT/scripts/bench/bridge_uas.xml" -i 127.0.0.1 -p "$TRUNK" -mp $((TRUNK + 2)) -nostdin \
    -trace_stat -stf uas_stat.csv -fd 5 > uas.out 2>&1) &
UPID=$!
cleanup() { kill -TERM "$VPID" "$UPID" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
sleep 2

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
HZ=$(getconf CLK_TCK)
printf 'server\toffered_cps\tcalls\tsuccessful\tfailed\tachieved_cps\tcpu_us_per_call\tpss_kb\tp50_ms\tp95_ms\n' > "$OUT/results.tsv"
for rate in $RATES; do
  calls=$(( rate * STEP )) dir="$OUT/bridge-$rate"
  mkdir -p "$dir"
  c0=$(cpu_ticks "$VPID"); t0=$(date +%s.%N)
  (cd "$dir" && sipp "127.0.0.1:$VPORT" -sf "$OUT/bridge_uac.xml" -inf "$OUT/numbers.csv" \
      -i 127.0.0.1 -p $((VPORT + 100)) -mp $((VPORT + 200)) -r "$rate" -m "$calls" -l $((rate * 4 + 100)) \
      -timeout $((STEP + 60))s -nostdin -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 \
      > sipp.out 2>&1 || true)
  t1=$(date +%s.%N); c1=$(cpu_ticks "$VPID")
  python3 "$ROOT/scripts/bench/analyse.py" veertien-bridge "$rate" "$calls" "$dir" $((c1 - c0)) "$HZ" "$(pss_kb "$VPID")" "$t0" "$t1" >> "$OUT/results.tsv"
  tail -n 1 "$OUT/results.tsv"
done
kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
echo "veertien shutdown report: $(tail -n 1 "$OUT/veertien.log")"
column -t -s $'\t' "$OUT/results.tsv"
