#!/usr/bin/env bash
# Load and stress test of the real `veertien serve` (release build) with SIPp on loopback
# (issue 6 item 2). Not part of CI: it runs for minutes and wants a quiet machine.
#
#   scripts/load/run.sh [--rate 40] [--duration 600] [--mix redirect=1]
#                       [--stress "400 1600 3200 6400"] [--stress-step 30] [--recovery 60]
#                       [--table 8192] [--bin PATH] [--out DIR] [--port 26060] [--skip-load]
#                       [--portal SECONDS] [--ivr 0.1] [--ivr-code 0113] [--ivr-speech 0]
#                       [--speech-audio DIR]
#
# Load phase: `--rate` calls/s for `--duration` s, split over the scenarios of `--mix`
# (name=share; one SIPp per scenario scripts/load/<name>_uac.xml). Reports failed calls,
# call records in the database vs calls made (after a clean SIGTERM, which flushes), RSS of
# the server every 5 s, and latency percentiles (SIPp INVITE → final response).
# IVR share (--ivr, of --rate; 0 = none): calls to the shared 14+ number of --ivr-code, answered
# by the IVR (keypad menu; speech recognition only with --ivr-speech); one SIPp caller per menu
# municipality with its own caller number presses that municipality's digit (RFC 4733 from a
# pcap) during the welcome and is put through to a SIPp UAS (every menu municipality bridged to
# it). Counted separately from the call records: offered, reached the chosen municipality, the
# rest by outcome, records vs calls.
# Speech part (--ivr-speech, a share of the IVR callers from 0 to 1; 0 = keypad only): those
# callers, again one per menu municipality with a caller number of its own, say the
# municipality's name during the welcome instead (espeak-ng, telephone band, G.711, from
# scripts/bench/ivr_pcap.py --say), then "ja" (heard only if the platform asks "Bedoelt u …?"),
# and stay on the line 18 s; the server runs with `[ivr] speech = true`, so this needs
# espeak-ng, sox and the speech model (`veertien model install`) and is refused without them.
# Reported apart (LOAD IVR speech): offered, reached the municipality they said, the rest by
# outcome, recognised first time, decision latency; the totals and records vs calls include them.
# sox dithers, so each run renders the names slightly differently, and a recogniser's answer can
# depend on the rendering: --speech-audio DIR replays an earlier run's speech callers instead
# (DIR = that run's --out; its load/ivr/speech-NAME/caller.pcap), for a before/after on the same audio.
# Stress phase (with --stress): a fresh server with a `--table`-sized transaction table is
# offered each rate for `--stress-step` s with stress_uac.xml (302, or 503 that must carry
# Retry-After), RSS sampled throughout, then `--recovery` s back at `--rate` with the strict
# scenario, which must have no failed call.
# Portal phase (with --portal): a fresh server, SIPp at `--rate` for SECONDS alone, then again
# while scripts/load/http_hammer.py hammers the portal (GET and wrong POST /login on 16
# keep-alive connections, same process and runtime as SIP); compares the 302 latencies.
# Everything lands in --out (default target/load/<UTC time>); summary.txt has the figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/scripts/load
RATE=40 DURATION=600 MIX="redirect=1" STRESS="" STEP=30 RECOVERY=60 TABLE=8192 BIN="" OUT="" PORT=26060 SKIP_LOAD=0 PORTAL=0
IVR=0.1 IVR_CODE=0113 IVR_SPEECH=0 SPEECH_AUDIO=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --mix) MIX=$2; shift 2 ;;
    --stress) STRESS=$2; shift 2 ;;
    --stress-step) STEP=$2; shift 2 ;;
    --recovery) RECOVERY=$2; shift 2 ;;
    --table) TABLE=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --skip-load) SKIP_LOAD=1; shift ;;
    --portal) PORTAL=$2; shift 2 ;;
    --ivr) IVR=$2; shift 2 ;;
    --ivr-code) IVR_CODE=$2; shift 2 ;;
    --ivr-speech) IVR_SPEECH=$2; shift 2 ;;
    --speech-audio) SPEECH_AUDIO=$2; shift 2 ;;
    -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 missing: apt-get install -y sqlite3" >&2; exit 1; }
python3 -c "import sys; s = float(sys.argv[1]); sys.exit(0 if 0 <= s < 1 else 1)" "$IVR" 2>/dev/null \
  || { echo "--ivr takes a share of the calls from 0 to below 1, not '$IVR'" >&2; exit 2; }
[[ "$IVR_CODE" =~ ^0[0-9]{2,3}$ ]] || { echo "--ivr-code takes an area code such as 0113, not '$IVR_CODE'" >&2; exit 2; }
python3 -c "import sys; s = float(sys.argv[1]); sys.exit(0 if 0 <= s <= 1 else 1)" "$IVR_SPEECH" 2>/dev/null \
  || { echo "--ivr-speech takes a share of the IVR callers from 0 to 1, not '$IVR_SPEECH'" >&2; exit 2; }
[ -z "$SPEECH_AUDIO" ] || [ -d "$SPEECH_AUDIO/load/ivr" ] \
  || { echo "--speech-audio takes an earlier run's --out directory (with load/ivr/speech-*/caller.pcap), not '$SPEECH_AUDIO'" >&2; exit 2; }
IVR_ON=$(python3 -c "import sys; print(1 if float(sys.argv[1]) > 0 else 0)" "$IVR")
SPEECH_ON=$(python3 -c "import sys; print(1 if float(sys.argv[1]) > 0 else 0)" "$IVR_SPEECH")
[ "$SKIP_LOAD" = 1 ] && { IVR_ON=0; SPEECH_ON=0; }
if [ "$SPEECH_ON" = 1 ]; then
  [ "$IVR_ON" = 1 ] || { echo "--ivr-speech is a share of the IVR callers: it needs --ivr above 0" >&2; exit 2; }
  for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "$tool missing (scripts/install-deps.sh installs it); --ivr-speech needs it" >&2; exit 1; }
  done
fi
OUT=${OUT:-$ROOT/target/load/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release -q -p veertien)
  BIN=$ROOT/target/release/veertien
fi
if [ "$SPEECH_ON" = 1 ] && ! model=$("$BIN" model status 2>&1); then
  echo "--ivr-speech $IVR_SPEECH refused: the speech callers need the speech model, and there is none." >&2
  echo "$model" >&2
  echo "Install it with: $BIN model install (or run with --ivr-speech 0: keypad callers only)" >&2
  exit 1
fi
SUMMARY=$OUT/summary.txt
say() { echo "$*" | tee -a "$SUMMARY"; }
say "veertien load test $(date -u +%FT%TZ) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "binary $BIN; rate $RATE/s for ${DURATION}s, mix $MIX, IVR share $IVR on 14$IVR_CODE$([ "$SPEECH_ON" = 1 ] && echo ", of which $IVR_SPEECH speech")$([ -n "$SPEECH_AUDIO" ] && echo "; speech callers replayed from $SPEECH_AUDIO")"

# The numbers: every 14+ number the shipped plan and default settings forward to one
# municipality by redirect, asked from the binary itself so the list follows the plan. When the
# mix has bridged calls, every other one of those municipalities is switched to bridging by a
# settings file, its calls go to the SIPp "municipality" behind the outbound trunk, and the
# redirect part uses the rest.
ALL=$OUT/forward_numbers.txt
tail -n +2 "$ROOT/data/numberplan/netnummergebieden.csv" | cut -d, -f2 | while read -r n; do
  "$BIN" route "$n" --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["decision"]; ok = d.get("kind")=="forward" and d.get("mode")=="redirect"; print(d["fourteen"], d["cbs"]) if ok else None'
done > "$ALL"
NUMBERS=$OUT/redirect_numbers.csv
BRIDGE_NUMBERS=$OUT/bridge_numbers.csv
SETTINGS=$OUT/settings.toml
TRUNK_PORT=$((PORT + 300))
: > "$SETTINGS"
if [[ ",$MIX" == *",bridge="* ]]; then
  { echo SEQUENTIAL; awk 'NR % 2 == 0 {print $1 ";"}' "$ALL"; } > "$BRIDGE_NUMBERS"
  { echo SEQUENTIAL; awk 'NR % 2 == 1 {print $1 ";"}' "$ALL"; } > "$NUMBERS"
  awk 'NR % 2 == 0 {print "[municipality." $2 "]\nmode = \"bridge\"\n"}' "$ALL" > "$SETTINGS"
else
  { echo SEQUENTIAL; awk '{print $1 ";"}' "$ALL"; } > "$NUMBERS"
fi
say "numbers: $(wc -l < "$ALL") of $(($(wc -l < "$ROOT/data/numberplan/netnummergebieden.csv") - 1)) 14+ numbers forward to one municipality"

# The IVR share: the keypad menu of the shared code as the binary decides it; every active
# menu municipality is bridged to the SIPp UAS (its CBS code as the user part, so the records
# show where each call went) and gets one SIPp caller, with a caller number of its own, that
# presses its digit, and with a speech part one more that says its name. The per-caller rate
# is in calls per 10 s so small shares still split.
IVR_UAS_PORT=$((PORT + 320))
IVR_CHOICES=$OUT/ivr_choices.txt          # digit cbs name caller calls_per_10s: keypad callers
IVR_SPEECH_CHOICES=$OUT/ivr_speech.txt    # the same for the callers who say the name
: > "$IVR_SPEECH_CHOICES"
IVR_PER10=0
if [ "$IVR_ON" = 1 ]; then
  "$BIN" route "14$IVR_CODE" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)["decision"]
kind = d.get("kind")
if kind != "ask":
    sys.exit(f"14{sys.argv[1]} is not a shared area code (decision: {kind}); --ivr-code needs one")
for c in d["candidates"]:
    if c.get("digit") is not None and c.get("status") == "active" and c.get("advertised"):
        print(c["digit"], c["cbs"], c["municipality"].replace(" ", "_"))
' "$IVR_CODE" > "$OUT/ivr_menu.txt"
  [ -s "$OUT/ivr_menu.txt" ] || { echo "14$IVR_CODE has no active municipality in its keypad menu" >&2; exit 1; }
  IVR_PER10=$(python3 -c "print(max(1, round($RATE * $IVR * 10)))")
  # At least one speech call per 10 s when any is asked for, never more than the IVR share.
  SPEECH_PER10=$(python3 -c "s = $IVR_SPEECH; print(0 if s == 0 else min($IVR_PER10, max(1, round($IVR_PER10 * s))))")
  k=$(wc -l < "$OUT/ivr_menu.txt")
  spread() { # $1 = calls per 10 s, $2 = caller number prefix: those calls over the menu, a caller each
    awk -v n="$1" -v k="$k" -v pre="$2" '{ r = int(n / k) + (NR <= n % k ? 1 : 0); if (r > 0) print $1, $2, $3, pre sprintf("%0" (10 - length(pre)) "d", NR), r }' \
        "$OUT/ivr_menu.txt"
  }
  spread $((IVR_PER10 - SPEECH_PER10)) 06 > "$IVR_CHOICES"
  spread "$SPEECH_PER10" 0690 > "$IVR_SPEECH_CHOICES"
  cut -d' ' -f2 "$IVR_CHOICES" "$IVR_SPEECH_CHOICES" | sort -u \
    | awk -v port="$IVR_UAS_PORT" '{ print "[municipality." $1 "]\nmode = \"bridge\"\ndestination = \"sip:" $1 "@127.0.0.1:" port "\"\n" }' >> "$SETTINGS"
  "$BIN" prompts build --dir "$OUT/prompts" --area "$IVR_CODE" > "$OUT/prompts.log" 2>&1 \
    || { echo "prompts for $IVR_CODE could not be built:"; tail -5 "$OUT/prompts.log"; exit 1; }
  keys="$(wc -l < "$IVR_CHOICES") menu choices ($(awk '{printf "%s%s=%s", (NR > 1 ? ", " : ""), $3, $1}' "$IVR_CHOICES"))"
  if [ "$SPEECH_ON" = 1 ]; then
    pressing=""; [ -s "$IVR_CHOICES" ] && pressing="$((IVR_PER10 - SPEECH_PER10)) press a key over $keys, "
    say "IVR: 14$IVR_CODE, $IVR_PER10 calls per 10 s: $pressing$SPEECH_PER10 say the name ($(awk '{printf "%s%s", (NR > 1 ? ", " : ""), $3}' "$IVR_SPEECH_CHOICES")); $model"
  else
    say "IVR: 14$IVR_CODE, $IVR_PER10 calls per 10 s over $keys, keypad only"
  fi
fi

write_config() { # $1 = file, $2 = db, $3 = transaction table size, $4 = speech (true/false, default false)
  cat > "$1" <<TOML
node_id = "load"
[sip]
udp = "127.0.0.1:$PORT"
tcp = "127.0.0.1:$PORT"
# One loopback load generator: the per-source flood guard would (rightly) throttle it.
rate_limit_per_source = 10000000
rate_burst = 10000000
transaction_table_size = $3
[http]
listen = "127.0.0.1:$((PORT + 1))"
[store]
path = "$2"
[plan]
settings = "$SETTINGS"
[trunk]
outbound = "127.0.0.1:$TRUNK_PORT"
[shutdown]
grace_secs = 5
[ivr]
prompts_dir = "$OUT/prompts"
speech = ${4:-false}
[rtp]
# Above every SIPp port of this script.
port_min = 30000
port_max = 39999
[health]
# The SIPp contact centres answer INVITEs only; OPTIONS probing is tested in faults_*.rs.
enabled = false
TOML
}

SERVER_PID=""
start_server() { # $1 = config, $2 = log
  "$BIN" serve --config "$1" > "$2" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q "SIP service started" "$2" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server did not start:"; cat "$2"; exit 1; }
    sleep 0.1
  done
  echo "server did not report start within 10 s" >&2; exit 1
}
wait_for_speech() { # $1 = log; speech callers before the model is loaded would get the keypad menu
  for _ in $(seq 1200); do
    grep -q "speech recogniser loaded" "$1" && return 0
    grep -qE "speech model (not installed|failed to load)" "$1" && { echo "the server has no speech recogniser:"; grep -E "speech model" "$1"; exit 1; }
    sleep 0.1
  done
  echo "the speech model did not load within 120 s" >&2; exit 1
}
stop_server() { # clean SIGTERM: drains and flushes records
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() { [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null; [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null; true; }
trap cleanup EXIT

SAMPLER=""
sample_rss() { # $1 = pid, $2 = file: "unix_seconds rss_kb" every 5 s
  ( while kill -0 "$1" 2>/dev/null; do
      echo "$(date +%s) $(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)"
      sleep 5
    done ) > "$2" &
  SAMPLER=$!
}

# Runs one SIPp UAC; $1 = dir, $2 = scenario, $3 = rate (calls per RP ms, default 1000), $4 = calls,
# $5 = local port.
run_sipp() {
  mkdir -p "$1"
  local rp=${RP:-1000}
  (cd "$1" && sipp "127.0.0.1:$PORT" -sf "$2" -inf "${INF:-$NUMBERS}" -i 127.0.0.1 -p "$5" -mp $(($5 + 2)) \
      -r "$3" -rp "$rp" ${SIPP_ARGS:-} -m "$4" -l $(( $3 * 40 + 100 )) -timeout $(( $4 * rp / 1000 / ($3 > 0 ? $3 : 1) + 90 ))s -nostdin \
      -trace_stat -stf stat.csv -fd 5 -trace_rtt -rtt_freq 1 -trace_err > sipp.out 2>&1 || true)
}

# Final cumulative counters of a SIPp stat file: created successful failed.
sipp_totals() {
  python3 - "$1/stat.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
h, last = rows[0], rows[-1]
get = lambda k: int(last[h.index(k)])
print(get("TotalCallCreated"), get("SuccessfulCall(C)"), get("FailedCall(C)"))
PY
}

# Each SIPp run's line in the summary ($1 = label, then their directories); prints the sums
# "calls successful failed".
sum_parts() {
  local label=$1 c s f tc=0 ts=0 tf=0; shift
  for d in "$@"; do
    read -r c s f < <(sipp_totals "$d")
    say "  $label${d##*/}: calls $c, successful $s, failed $f" >&2
    tc=$((tc + c)); ts=$((ts + s)); tf=$((tf + f))
  done
  echo "$tc $ts $tf"
}

percentiles() { # all *_rtt.csv under the directories given → "n p50 p90 p99 p99.9 max" in ms
  python3 - "$@" <<'PY'
import glob, sys
v = []
for f in [f for d in sys.argv[1:] for f in glob.glob(d + "/**/*_rtt.csv", recursive=True)]:
    for line in open(f):
        p = line.strip().split(";")
        try: v.append(float(p[1]))
        except (IndexError, ValueError): pass
v.sort()
q = lambda x: v[min(len(v) - 1, int(x * len(v)))] if v else float("nan")
print(len(v), *("%.2f" % q(x) for x in (0.5, 0.9, 0.99, 0.999)), "%.2f" % (v[-1] if v else float("nan")))
PY
}

pdd() { # server-side INVITE in → final response out (ms, from the call records; $2 = SQL condition)
  python3 - "$1" "${2:-1}" <<'PY'
import sqlite3, sys
v = sorted(r[0] for r in sqlite3.connect(sys.argv[1]).execute(f"select post_dial_delay_ms from calls where post_dial_delay_ms is not null and ({sys.argv[2]})"))
q = lambda x: v[min(len(v) - 1, int(x * len(v)))] if v else "-"
print(f"p50 {q(.5)}, p90 {q(.9)}, p99 {q(.99)}, p99.9 {q(.999)}, max {v[-1] if v else '-'}")
PY
}

sipp_uas_total() { # $1 = a SIPp UAS stat file → calls it took
  python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
print(rows[-1][rows[0].index("TotalCallCreated")] if len(rows) > 1 else 0)' "$1" 2>/dev/null || echo "?"
}

# IVR calls from the records: $1 = db, $2 = choices (digit cbs name caller per10), $3 = calls
# offered, $4 = area code, $5 = how those callers chose: key or speech. Only the records of the
# callers in $2 count. Reached = answered at the municipality whose digit the caller pressed or
# whose name it said.
ivr_report() {
  python3 - "$@" <<'PY'
import collections, json, sqlite3, sys
db, choices, offered, code, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
# The record keeps the number as presented or normalised (+31…): match on the subscriber part.
subscriber = lambda number: "".join(ch for ch in number if ch.isdigit())[-9:]
chosen = {}
for line in open(choices):
    digit, cbs, name, caller, _ = line.split()
    chosen[subscriber(caller)] = (cbs, name.replace("_", " "), digit, caller)
rows = [
    r for r in sqlite3.connect(db).execute(
        "select caller, municipality_cbs, coalesce(outcome, 'in_progress'), ivr from calls where decision_kind = 'ask' and area_code = ?",
        (code,),
    )
    if subscriber(r[0]) in chosen
]
reached, other, per = 0, collections.Counter(), collections.defaultdict(lambda: [0, 0])
for caller, cbs, outcome, _ in rows:
    caller = subscriber(caller)
    want = chosen[caller]
    per[caller][0] += 1
    if outcome == "answered" and cbs == want[0]:
        reached += 1
        per[caller][1] += 1
    elif cbs and cbs != want[0]:
        other["wrong_municipality"] += 1
    else:
        other[outcome] += 1
pct = lambda a, b: "%.3f" % (100 * a / max(b, 1))
aim = "the chosen municipality" if how == "key" else "the municipality they said"
print(f"reached {aim} {reached} of {offered} offered ({pct(reached, offered)} %); "
      f"not reached {offered - reached} ({pct(offered - reached, offered)} %) by outcome: "
      + (" ".join(f"{k}={v}" for k, v in sorted(other.items())) or "-")
      + (f", no record {offered - len(rows)}" if len(rows) < offered else ""))
print(f"call records {len(rows)} vs {'IVR' if how == 'key' else 'speech'} calls offered {offered}; equal: {'yes' if len(rows) == offered else 'NO'}")
for key, (cbs, name, digit, caller) in chosen.items():
    n, ok = per[key]
    print(f"  {'key ' + digit if how == 'key' else 'said'} {name} ({cbs}, caller {caller}): records {n}, reached {ok}")
if how == "speech":
    first, confirm, menu, latency = 0, 0, 0, []
    for *_, ivr in rows:
        ivr = json.loads(ivr or "null") or {}
        entries = ivr.get("entries") or []
        first += ivr.get("recognised_first_time") is True
        asked = {i for e in entries if e.get("what") == "prompt" for i in e.get("ids") or []}
        confirm += "confirm" in asked
        menu += "menu" in asked
        recognised = [e["latency_ms"] for e in entries if e.get("what") == "recognised" and "latency_ms" in e]
        latency += recognised[:1]
    latency.sort()
    q = lambda x: latency[min(len(latency) - 1, int(x * len(latency)))] if latency else "-"
    print(f"recognised first time in {first} of {len(rows)} records; asked \"Bedoelt u …?\" in {confirm}, the keypad menu in {menu}; "
          f"decision after the end of the first utterance ms (n={len(latency)}): p50 {q(.5)}, p95 {q(.95)}, max {latency[-1] if latency else '-'}")
PY
}

rss_summary() { # $1 = rss file → "first_mb max_mb last_mb samples"
  awk 'NF==2 && $2>0 { if (!n) f=$2; if ($2>m) m=$2; l=$2; n++ } END { printf "%.1f %.1f %.1f %d\n", f/1024, m/1024, l/1024, n }' "$1"
}

shutdown_metric() { # $1 = log, $2 = field of the shutdown report
  grep "SIP service stopped" "$1" | grep -oE "$2: [0-9]+" | head -n1 | awk '{print $2}'
}

if [ "$SKIP_LOAD" = 0 ]; then
  L=$OUT/load; mkdir -p "$L"
  write_config "$L/veertien.toml" "$L/calls.db" 65536 "$([ "$SPEECH_ON" = 1 ] && echo true || echo false)"
  start_server "$L/veertien.toml" "$L/veertien.log"
  if [ "$SPEECH_ON" = 1 ]; then wait_for_speech "$L/veertien.log"; fi
  sample_rss "$SERVER_PID" "$L/rss.txt"
  UAS=""
  if [[ ",$MIX" == *",bridge="* ]]; then
    (cd "$L" && exec sipp -sf "$HERE/municipality_uas.xml" -i 127.0.0.1 -p "$TRUNK_PORT" -mp $((TRUNK_PORT + 2)) -nostdin \
        -trace_stat -stf uas_stat.csv -fd 5 > uas.out 2>&1) &
    UAS=$!
  fi
  IVR_UAS=""
  if [ "$IVR_ON" = 1 ]; then
    mkdir -p "$L/ivr"
    (cd "$L/ivr" && exec sipp -sf "$ROOT/crates/server/tests/sipp/uas_answer.xml" -i 127.0.0.1 -p "$IVR_UAS_PORT" \
        -mp $((IVR_UAS_PORT + 2)) -rtp_echo -nostdin -trace_stat -stf uas_stat.csv -fd 5 > uas.out 2>&1) &
    IVR_UAS=$!
  fi
  pids=(); names=(); ivr_dirs=(); speech_dirs=()
  lport=$((PORT + 100))
  for part in ${MIX//,/ }; do
    name=${part%%=*}; share=${part#*=}
    scen=$HERE/${name}_uac.xml
    [ -f "$scen" ] || { echo "no scenario $scen for mix part '$name'" >&2; exit 2; }
    # The mix shares the rate the IVR share leaves.
    r=$(python3 -c "print(max(1, round(($RATE - $IVR_PER10 / 10) * $share)))")
    inf=$NUMBERS; [ "$name" = bridge ] && inf=$BRIDGE_NUMBERS
    INF=$inf run_sipp "$L/$name" "$scen" "$r" $(( r * DURATION )) "$lport" & pids+=($!); names+=("$name")
    lport=$((lport + 10))
  done
  ivr_callers() { # $1 = choices, $2 = key or speech, $3 = the array their directories go to
    local -n dirs=$3
    local digit cbs mname caller per10 d hold
    while read -r digit cbs mname caller per10; do
      if [ "$2" = speech ]; then
        d=$L/ivr/speech-$mname; mkdir -p "$d"
        if [ -n "$SPEECH_AUDIO" ]; then
          cp "$SPEECH_AUDIO/load/ivr/speech-$mname/caller.pcap" "$d/caller.pcap"
        else
          python3 "$ROOT/scripts/bench/ivr_pcap.py" "$d/caller.pcap" --say "${mname//_/ }" ja
        fi
        # On the line 18 s after the answer: welcome, the name, perhaps "Bedoelt u …?" and
        # "ja", "even geduld…", the municipality (as scripts/bench/ivr.sh).
        hold=18000
      else
        d=$L/ivr/$mname; mkdir -p "$d"
        python3 "$ROOT/scripts/bench/ivr_pcap.py" "$d/caller.pcap" --key "$digit" --hold 8000
        # On the line 10 s after the answer: welcome, key, "even geduld…", the municipality.
        hold=10000
      fi
      printf 'SEQUENTIAL\n14%s;%s;\n' "$IVR_CODE" "$caller" > "$d/numbers.csv"
      RP=10000 INF=$d/numbers.csv SIPP_ARGS="-d $hold" run_sipp "$d" "$ROOT/crates/server/tests/sipp/ivr_uac_inf_play_bye.xml" \
          "$per10" $(( per10 * DURATION / 10 )) "$lport" &
      pids+=($!); dirs+=("$d")
      lport=$((lport + 10))
    done < "$1"
  }
  if [ "$IVR_ON" = 1 ]; then
    lport=$((PORT + 500))
    ivr_callers "$IVR_CHOICES" key ivr_dirs
    ivr_callers "$IVR_SPEECH_CHOICES" speech speech_dirs
  fi
  for p in "${pids[@]}"; do wait "$p"; done
  sleep 6   # one RSS sample after the load
  stop_server
  # The contact centres may be gone already (a port in use): that shows in their figures.
  [ -n "$UAS" ] && { kill "$UAS" 2>/dev/null || true; wait "$UAS" 2>/dev/null || true; }
  [ -n "$IVR_UAS" ] && { kill "$IVR_UAS" 2>/dev/null || true; wait "$IVR_UAS" 2>/dev/null || true; }
  kill "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  mix_dirs=(); for name in "${names[@]}"; do mix_dirs+=("$L/$name"); done
  read -r made ok failed < <(sum_parts "" "${mix_dirs[@]}")
  read -r ivr_made ivr_ok ivr_failed < <(sum_parts "ivr " "${ivr_dirs[@]}")
  read -r speech_made speech_ok speech_failed < <(sum_parts "ivr " "${speech_dirs[@]}")
  made=$((made + ivr_made + speech_made)); ok=$((ok + ivr_ok + speech_ok)); failed=$((failed + ivr_failed + speech_failed))
  records=$(sqlite3 "$L/calls.db" "select count(*) from calls")
  by_outcome=$(sqlite3 "$L/calls.db" "select coalesce(outcome,'-') || '=' || count(*) from calls group by outcome" | tr '\n' ' ')
  dropped=$(shutdown_metric "$L/veertien.log" dropped || true)
  read -r n p50 p90 p99 p999 max < <(percentiles "${mix_dirs[@]}")
  read -r r0 rmax rlast rn < <(rss_summary "$L/rss.txt")
  say "LOAD calls made $made, successful $ok, failed $failed ($(python3 -c "print('%.3f' % (100 * $failed / max($made, 1)))") %)"
  say "LOAD call records $records ($by_outcome), records dropped ${dropped:-0}; equal to calls made: $([ "$records" = "$made" ] && echo yes || echo NO)"
  say "LOAD latency INVITE→final response ms at SIPp (n=$n; SIPp's clock ticks in 4 ms steps here): p50 $p50, p90 $p90, p99 $p99, p99.9 $p999, max $max"
  say "LOAD latency in the server (call records' post-dial delay, ms): $(pdd "$L/calls.db" "decision_kind <> 'ask'")"
  if [ "$IVR_ON" = 1 ]; then
    if [ -s "$IVR_CHOICES" ]; then
      say "LOAD IVR calls offered $ivr_made (14$IVR_CODE, keypad), SIPp successful $ivr_ok, failed $ivr_failed"
      ivr_report "$L/calls.db" "$IVR_CHOICES" "$ivr_made" "$IVR_CODE" key | while IFS= read -r line; do say "LOAD IVR $line"; done
    fi
    if [ "$SPEECH_ON" = 1 ]; then
      say "LOAD IVR speech calls offered $speech_made (14$IVR_CODE, the name said), SIPp successful $speech_ok, failed $speech_failed"
      ivr_report "$L/calls.db" "$IVR_SPEECH_CHOICES" "$speech_made" "$IVR_CODE" speech | while IFS= read -r line; do say "LOAD IVR speech $line"; done
    fi
    read -r n p50 p90 p99 p999 max < <(percentiles "${ivr_dirs[@]}" "${speech_dirs[@]}")
    say "LOAD IVR latency INVITE→200 (IVR answers) ms at SIPp (n=$n): p50 $p50, p90 $p90, p99 $p99, max $max; in the server: $(pdd "$L/calls.db" "decision_kind = 'ask'")"
    say "LOAD IVR contact centre (SIPp UAS): calls $(sipp_uas_total "$L/ivr/uas_stat.csv")"
  fi
  say "LOAD server RSS MB: start $r0, max $rmax, end $rlast ($rn samples every 5 s; $L/rss.txt)"
fi

if [ -n "$STRESS" ]; then
  S=$OUT/stress; mkdir -p "$S"
  write_config "$S/veertien.toml" "$S/calls.db" "$TABLE"
  start_server "$S/veertien.toml" "$S/veertien.log"
  sample_rss "$SERVER_PID" "$S/rss.txt"
  say "STRESS transaction table $TABLE, ${STEP}s per rate, then ${RECOVERY}s at $RATE/s"
  i=0
  for r in $STRESS; do
    t0=$(date +%s)
    run_sipp "$S/step-$r" "$HERE/stress_uac.xml" "$r" $(( r * STEP )) $((PORT + 200 + i * 10))
    read -r c s f < <(sipp_totals "$S/step-$r")
    read -r n p50 p90 p99 p999 max < <(percentiles "$S/step-$r")
    rss=$(awk -v t="$t0" '$1>=t {print $2}' "$S/rss.txt" | sort -n | tail -1)
    say "STRESS offered $r/s: calls $c, answered 302 or 503 $s, failed $f, 302 latency p50 $p50 p99 $p99 ms, max RSS $(( ${rss:-0} / 1024 )) MB"
    i=$((i + 1))
  done
  run_sipp "$S/recovery" "$HERE/redirect_uac.xml" "$RATE" $(( RATE * RECOVERY )) $((PORT + 200 + i * 10))
  read -r c s f < <(sipp_totals "$S/recovery")
  read -r n p50 p90 p99 p999 max < <(percentiles "$S/recovery")
  sleep 6
  stop_server
  kill "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  say "STRESS recovery at $RATE/s: calls $c, successful $s, failed $f, p50 $p50 p99 $p99 ms"
  say "STRESS server shed (503) $(shutdown_metric "$S/veertien.log" shed || echo ?), redirected $(shutdown_metric "$S/veertien.log" redirected || echo ?), records dropped $(shutdown_metric "$S/veertien.log" dropped || echo 0)"
  read -r r0 rmax rlast rn < <(rss_summary "$S/rss.txt")
  say "STRESS server RSS MB: start $r0, max $rmax, end $rlast ($rn samples; $S/rss.txt)"
fi
if [ "$PORTAL" -gt 0 ]; then
  P=$OUT/portal; mkdir -p "$P"
  write_config "$P/veertien.toml" "$P/calls.db" 65536
  start_server "$P/veertien.toml" "$P/veertien.log"
  run_sipp "$P/alone" "$HERE/redirect_uac.xml" "$RATE" $(( RATE * PORTAL )) $((PORT + 400))
  read -r c s f < <(sipp_totals "$P/alone")
  read -r n p50 p90 p99 p999 max < <(percentiles "$P/alone")
  say "PORTAL SIP alone at $RATE/s: calls $c, failed $f, 302 latency p50 $p50 p90 $p90 p99 $p99 max $max ms"
  python3 "$HERE/http_hammer.py" "127.0.0.1:$((PORT + 1))" "$((PORTAL + 5))" 16 > "$P/hammer.txt" 2>&1 &
  hammer=$!
  sleep 2
  run_sipp "$P/hammered" "$HERE/redirect_uac.xml" "$RATE" $(( RATE * PORTAL )) $((PORT + 410))
  wait "$hammer" || true
  read -r c s f < <(sipp_totals "$P/hammered")
  read -r n p50 p90 p99 p999 max < <(percentiles "$P/hammered")
  say "PORTAL SIP while the portal is hammered: calls $c, failed $f, 302 latency p50 $p50 p90 $p90 p99 $p99 max $max ms"
  say "PORTAL hammer: $(cat "$P/hammer.txt")"
  stop_server
fi
say "results in $OUT"
