#!/usr/bin/env bash
# Instructions per redirected call, veertien vs Kamailio 5.6, counted by valgrind's callgrind.
#
#   scripts/bench/instructions.sh [SMALL] [LARGE] [RATE]      (defaults: 300 1500 100)
#
# Why instructions and not CPU seconds: this project's build machines are shared (load average
# 3–9 while benchmarks run), which stretches CPU time per call by a factor that differs between
# runs. Instruction counts are the same whatever else the machine does, so this ratio holds on a
# busy box; the CPU-time figures of redirect.sh are the ones to take from an idle one.
#
# Method: each server runs twice under `valgrind --tool=callgrind --trace-children=yes` (every
# thread and every Kamailio child counted), once taking SMALL calls and once LARGE calls from SIPp
# (INVITE → 302 → ACK, crates/server/tests/sipp/redirect_uac.xml), both runs the same wall-clock
# length (the call rate is scaled), then stopped with SIGTERM. Instructions per call =
# (I_large − I_small) / (LARGE − SMALL): start-up, shutdown and timers cancel out. veertien's
# figure includes writing every call record to SQLite (WAL) and its journal; Kamailio keeps no
# record. Output: target/bench-instructions/results.tsv.
set -euo pipefail
SMALL=${1:-300}
LARGE=${2:-1500}
RATE=${3:-100}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/target/bench-instructions
rm -rf "$OUT"; mkdir -p "$OUT"
NUMBER=140111
VPORT=25160; KPORT=25170
KSHM=${KAMAILIO_SHM_MB:-1024}   # Kamailio shared memory (MB), as in redirect.sh

for tool in sipp kamailio valgrind; do
  command -v "$tool" >/dev/null || { echo "$tool missing (apt-get install sip-tester kamailio valgrind)" >&2; exit 1; }
done
(cd "$ROOT" && cargo build --release -q -p veertien-server --example serve)
VBIN=$ROOT/target/release/examples/serve
"$ROOT/scripts/bench/kamailio-redirect-cfg.sh" "$KPORT" tm > "$OUT/kamailio.cfg"

veertien_cfg() { # dir
  cat > "$1/veertien.toml" <<TOML
node_id = "bench"
[sip]
udp = "127.0.0.1:$VPORT"
tcp = "127.0.0.1:$VPORT"
rate_limit_per_source = 10000000
rate_burst = 10000000
[store]
path = "$1/veertien.db"
[shutdown]
grace_secs = 2
# SIP only: the speech model (~260 MB once installed) plays no part in a 302.
[ivr]
speech = false
TOML
}

wait_port() { # port: until the server answers any SIP response to an OPTIONS (valgrind start-up
  # takes seconds; Kamailio's benchmark config answers 405, veertien 200)
  python3 - "$1" <<'PY' || { echo "server on port $1 did not come up" >&2; return 1; }
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(1.0)
me = s.getsockname()[1]
for i in range(120):
    msg = (f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-probe{i}\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=p{i}\r\nTo: <sip:probe@127.0.0.1>\r\n"
           f"Call-ID: probe-{i}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        if s.recv(4096).startswith(b"SIP/2.0 "):
            sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
PY
}

run() { # server calls
  local server=$1 calls=$2 dir="$OUT/$1-$2" port pid rate
  mkdir -p "$dir"
  # Same duration for both call counts, so timer work cancels in the difference.
  rate=$(( RATE * calls / LARGE )); [ "$rate" -ge 1 ] || rate=1
  if [ "$server" = veertien ]; then
    port=$VPORT; veertien_cfg "$dir"
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
      "$VBIN" "$dir/veertien.toml" > "$dir/server.out" 2> "$dir/server.log" &
  else
    port=$KPORT
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
      kamailio -DD -E -m "$KSHM" -f "$OUT/kamailio.cfg" -P "$dir/kamailio.pid" > "$dir/server.out" 2> "$dir/server.log" &
  fi
  pid=$!
  wait_port "$port"
  (cd "$dir" && sipp "127.0.0.1:$port" -sf "$ROOT/crates/server/tests/sipp/redirect_uac.xml" -s "$NUMBER" \
      -i 127.0.0.1 -p $(( port + 100 )) -r "$rate" -m "$calls" -l $(( rate * 10 + 10 )) \
      -timeout $(( LARGE / RATE + 120 ))s -nostdin -trace_stat -stf stat.csv -fd 1 > sipp.out 2>&1 || true)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  # Kamailio's children may outlive the main process by a moment.
  sleep 2
  local total ok
  total=$(cat "$dir"/cg.* | awk '/^summary:/ {s += $2} END {printf "%.0f\n", s}')
  ok=$(python3 - "$dir/stat.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
print(rows[-1][rows[0].index("SuccessfulCall(C)")])
PY
)
  printf '%s\t%s\t%s\t%s\n' "$server" "$calls" "$ok" "$total" | tee -a "$OUT/runs.tsv"
}

printf 'server\tcalls\tsuccessful\tinstructions\n' > "$OUT/runs.tsv"
for server in ${SERVERS:-veertien kamailio}; do
  run "$server" "$SMALL"
  run "$server" "$LARGE"
done
python3 - "$OUT/runs.tsv" "$OUT/results.tsv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
out = open(sys.argv[2], "w")
out.write("server\tinstructions_per_call\tcalls_small_ok\tcalls_large_ok\n")
per = {}
for server in ("veertien", "kamailio"):
    if not any(x["server"] == server for x in rows):
        continue
    r = sorted((x for x in rows if x["server"] == server), key=lambda x: int(x["calls"]))
    small, large = r[0], r[-1]
    d_calls = int(large["successful"]) - int(small["successful"])
    per[server] = (float(large["instructions"]) - float(small["instructions"])) / max(d_calls, 1)
    out.write(f"{server}\t{per[server]:.0f}\t{small['successful']}\t{large['successful']}\n")
if len(per) == 2:
    out.write(f"ratio veertien/kamailio\t{per['veertien'] / per['kamailio']:.2f}\t\t\n")
out.close()
print(open(sys.argv[2]).read())
PY
