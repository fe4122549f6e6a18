#!/usr/bin/env bash
# Redirect load benchmark: SIPp on loopback against veertien and Kamailio 5.6 doing the same
# 302 from a table of the 141 14+ numbers, in the same run, at increasing offered rates.
#
#   scripts/bench/redirect.sh [RATES] [SECONDS_PER_STEP]
#   e.g. scripts/bench/redirect.sh "1000 2000 4000 8000 12000 16000" 10
#
# Per server and rate: calls/s achieved, failed calls, server CPU µs per call (utime+stime
# from /proc/<pid>/stat of every server process), memory (sum of Pss from
# /proc/<pid>/smaps_rollup) after the step, and added delay p50/p95 (SIPp per-call response
# time, INVITE → 302). Results: target/bench-redirect/results.tsv (+ SIPp logs).
#
# VARIED=1: every call from its own random caller (06…) to one of the 14+ numbers the plan
# redirects (asked from VEERTIEN_BIN, default target/release/veertien), instead of one caller
# calling 140111. The call record's indexes then grow where real traffic puts them (spread-out
# keys), not only at their ends; the default keeps the figures comparable with earlier runs.
#
# STORE_EXTRA: lines added to veertien's `[store]` section, e.g. to compare record batching on
# one binary: STORE_EXTRA=$'record_batch_ms = 50\nrecord_batch_max = 256'.
# THREADS=1: also the split of veertien's CPU over its threads (by thread name) and their
# context switches per second during each step, from /proc/<pid>/task/*/{stat,status}, in
# <step dir>/threads.txt and on stdout.
set -euo pipefail
RATES=${1:-"1000 2000 4000 6000 8000 12000 16000"}
STEP=${2:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/target/bench-redirect
rm -rf "$OUT"; mkdir -p "$OUT"
NUMBER=140111   # unique area code (Schouwen-Duiveland), redirect under default settings
VPORT=25060; KPORT=25070

command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
command -v kamailio >/dev/null || { echo "kamailio missing: apt-get install -y kamailio" >&2; exit 1; }

# VEERTIEN_SERVE_BIN: a prebuilt binary (e.g. to compare two builds); default: build it.
VBIN=${VEERTIEN_SERVE_BIN:-}
if [ -z "$VBIN" ]; then
  (cd "$ROOT" && cargo build --release -q -p veertien-server --example serve)
  VBIN=$ROOT/target/release/examples/serve
fi

SCENARIO=$ROOT/crates/server/tests/sipp/redirect_uac.xml
CALLS_FROM=(-s "$NUMBER")
if [ "${VARIED:-0}" = 1 ]; then
  CLI=${VEERTIEN_BIN:-$ROOT/target/release/veertien}
  [ -x "$CLI" ] || (cd "$ROOT" && cargo build --release -q -p veertien)
  tail -n +2 "$ROOT/data/numberplan/netnummergebieden.csv" | cut -d, -f2 | while read -r n; do
    "$CLI" route "$n" --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["decision"]; print(d["fourteen"]) if d.get("kind")=="forward" and d.get("mode")=="redirect" else None'
  done > "$OUT/redirect_numbers.txt"
  # SIPp injection file: field0 the caller, field1 the number; read in random order.
  python3 - "$OUT/redirect_numbers.txt" "$OUT/calls.csv" <<'PY'
import random, sys
numbers = open(sys.argv[1]).read().split()
rng = random.Random(14)
with open(sys.argv[2], "w") as f:
    f.write("RANDOM\n")
    for _ in range(200_000):
        f.write(f"06{rng.randrange(10**8):08d};{rng.choice(numbers)}\n")
PY
  sed -e 's/0612345678/[field0]/g' -e 's/\[service\]/[field1]/g' "$SCENARIO" > "$OUT/redirect_uac_varied.xml"
  SCENARIO=$OUT/redirect_uac_varied.xml
  CALLS_FROM=(-inf "$OUT/calls.csv")
  echo "varied: $(wc -l < "$OUT/redirect_numbers.txt") redirect numbers, random callers" >&2
fi

cat > "$OUT/veertien.toml" <<TOML
node_id = "bench"
[sip]
udp = "127.0.0.1:$VPORT"
tcp = "127.0.0.1:$VPORT"
# Loopback load generator: the flood guard would (rightly) throttle it.
rate_limit_per_source = 10000000
rate_burst = 10000000
[store]
path = "$OUT/veertien.db"
${STORE_EXTRA:-}
[shutdown]
grace_secs = 2
# SIP only: the speech model (~260 MB once installed) plays no part in a 302.
[ivr]
speech = false
TOML

# Kamailio: same table, stateful like veertien (tm); KAMAILIO_MODE=sl gives the stateless variant.
MODE=${KAMAILIO_MODE:-tm}
# Kamailio's shared memory (MB). The default 64 MB holds ~5 s of tm transactions at ~1000 calls/s
# (each waits 5 s for the ACK); with it Kamailio answered "out of mem" from the first second
# (INVITEs then succeed only on retransmission). Production deployments run with -m 512+.
KSHM=${KAMAILIO_SHM_MB:-1024}
"$ROOT/scripts/bench/kamailio-redirect-cfg.sh" "$KPORT" "$MODE" > "$OUT/kamailio.cfg"
kamailio -c -f "$OUT/kamailio.cfg" >/dev/null 2>&1 || { echo "kamailio config check failed: $OUT/kamailio.cfg" >&2; kamailio -c -f "$OUT/kamailio.cfg"; exit 1; }

"$VBIN" "$OUT/veertien.toml" > "$OUT/veertien.stdout" 2> "$OUT/veertien.log" &
VPID=$!
kamailio -DD -E -m "$KSHM" -f "$OUT/kamailio.cfg" -P "$OUT/kamailio.pid" > "$OUT/kamailio.log" 2>&1 &
KPID=$!
cleanup() { kill -TERM "$VPID" 2>/dev/null || true; kill -TERM "$KPID" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
sleep 2

pids_of() { # the server process and all its children
  local p=$1; echo "$p"; pgrep -P "$p" || true
}
cpu_ticks() { local t=0; for p in $(pids_of "$1"); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
pss_kb() { local t=0; for p in $(pids_of "$1"); do
    t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo $t; }
HZ=$(getconf CLK_TCK)
# Per thread of veertien: name, CPU ticks, voluntary and involuntary context switches.
thread_snap() {
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s %s\n' "$(basename "$t")" "$(tr ' ' _ < "$t/comm")" \
      "$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)" \
      "$(awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v+0, n+0}' "$t/status" 2>/dev/null || echo 0 0)"
  done | LC_ALL=C sort
}

printf 'server\toffered_cps\tcalls\tsuccessful\tfailed\tachieved_cps\tcpu_us_per_call\tpss_kb\tp50_ms\tp95_ms\n' > "$OUT/results.tsv"
run_step() { # name pid port rate
  local name=$1 pid=$2 port=$3 rate=$4 calls=$(( $4 * STEP )) dir="$OUT/$1-$4"
  mkdir -p "$dir"
  local c0 c1 t0 t1
  [ "${THREADS:-0}" = 1 ] && [ "$name" = veertien ] && thread_snap "$pid" > "$dir/threads.0"
  c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  (cd "$dir" && sipp "127.0.0.1:$port" -sf "$SCENARIO" "${CALLS_FROM[@]}" \
      -i 127.0.0.1 -p $((port + 100)) -mp $((port + 200)) -r "$rate" -m "$calls" -l $((rate * 4)) \
      -timeout $((STEP + 40))s -nostdin -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1000 \
      > sipp.out 2>&1 || true)
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  if [ "${THREADS:-0}" = 1 ] && [ "$name" = veertien ]; then
    thread_snap "$pid" > "$dir/threads.1"
    # Threads that ended during the step are left out; those that began count from zero.
    LC_ALL=C join -a 2 -e 0 -o 2.2,1.3,2.3,1.4,2.4,1.5,2.5 "$dir/threads.0" "$dir/threads.1" | python3 -c '
import sys, collections
secs = float(sys.argv[2]) - float(sys.argv[1])
by = collections.defaultdict(lambda: [0, 0, 0])
for line in sys.stdin:
    name, c0, c1, v0, v1, n0, n1 = line.split()
    b = by[name]; b[0] += int(c1) - int(c0); b[1] += int(v1) - int(v0); b[2] += int(n1) - int(n0)
total = sum(b[0] for b in by.values()) or 1
print("%-16s %9s %15s %17s" % ("thread", "CPU share", "voluntary cs/s", "involuntary cs/s"))
for name, (cpu, vol, inv) in sorted(by.items(), key=lambda kv: -kv[1][0]):
    if cpu or vol:
        print(f"{name:<16} {100 * cpu / total:>8.1f}% {vol / secs:>15.0f} {inv / secs:>17.0f}")
' "$t0" "$t1" | tee "$dir/threads.txt"
  fi
  python3 "$ROOT/scripts/bench/analyse.py" "$name" "$rate" "$calls" "$dir" $((c1 - c0)) "$HZ" "$(pss_kb "$pid")" "$t0" "$t1" >> "$OUT/results.tsv"
  tail -n 1 "$OUT/results.tsv"
}
for rate in $RATES; do
  run_step veertien "$VPID" "$VPORT" "$rate"
  run_step "kamailio-$MODE" "$KPID" "$KPORT" "$rate"
done
kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
echo "veertien shutdown report: $(tail -n 1 "$OUT/veertien.log")"
column -t -s $'\t' "$OUT/results.tsv"
