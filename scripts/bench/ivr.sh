#!/usr/bin/env bash
# IVR capacity with speech: how many simultaneous callers on a shared area code one machine
# holds. `veertien serve` (release build, Whisper loaded once) answers SIPp callers on 14 0113;
# each caller says "Kapelle" during the welcome (espeak-ng, telephone band, G.711 u-law,
# replayed with play_pcap_audio), and 2.5 s later "ja" (heard only if the platform asks
# "Bedoelt u Kapelle?"), stays on the line for HOLD_MS and hangs up. A SIPp UAS is Kapelle's
# contact centre (answers after 200 ms). Per concurrency level SIPp keeps at most N calls up
# (-l N), started over the first 16 s of the step, CALLS_PER_SLOT calls per slot.
#
#   scripts/bench/ivr.sh [LEVELS] [CALLS_PER_SLOT] [HOLD_MS]
#   e.g. scripts/bench/ivr.sh "4 8 16 32" 3 18000
#
# Per level (target/bench-ivr/results.tsv, from the call records and /proc of serve): IVR
# calls, calls answered at Kapelle, failed ones by outcome, decision latency after the VAD's
# end of speech p50/p95/max and after the end of the caller's audio, the share of answers
# computed while the caller was still on the line, CPU ms of serve per call, RSS, load.
# Needs: sipp, espeak-ng, sox, python3, the speech model (`veertien model install`).
# VEERTIEN_BIN: a prebuilt `veertien` binary; default: cargo build --release -p veertien.
set -euo pipefail
LEVELS=${1:-"4 8 16 32"}
PER_SLOT=${2:-3}
HOLD=${3:-18000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/target/bench-ivr
rm -rf "$OUT"; mkdir -p "$OUT"
VPORT=25560; UAS=25860; HTTP=25580

for tool in sipp espeak-ng sox python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing (scripts/test.sh installs the tools)" >&2; exit 1; }
done
VBIN=${VEERTIEN_BIN:-}
if [ -z "$VBIN" ]; then
  (cd "$ROOT" && cargo build --release -q -p veertien)
  VBIN=$ROOT/target/release/veertien
fi
"$VBIN" model status >/dev/null 2>&1 || { echo "speech model not installed: $VBIN model install" >&2; exit 1; }

KAPELLE=GM0678
# Kapelle bridged to the SIPp contact centre; a big per-source rate limit (every SIPp call
# comes from 127.0.0.1).
printf '[municipality.%s]\nmode = "bridge"\ndestination = "sip:kapelle@127.0.0.1:%s"\n' "$KAPELLE" "$UAS" > "$OUT/settings.toml"
cat > "$OUT/veertien.toml" <<TOML
node_id = "bench-ivr"
[sip]
udp = "127.0.0.1:$VPORT"
tcp = "127.0.0.1:$VPORT"
rate_limit_per_source = 10000000
rate_burst = 10000000
[http]
listen = "127.0.0.1:$HTTP"
prompts_dir = "$OUT/prompts"
[store]
path = "$OUT/calls.db"
[plan]
settings = "$OUT/settings.toml"
[ivr]
speech = true
[shutdown]
grace_secs = 10
[health]
enabled = false
TOML

# The caller's audio.
python3 "$ROOT/scripts/bench/ivr_pcap.py" "$OUT/caller.pcap" --say Kapelle ja

# Prompts for 0113 before the clock runs (espeak-ng; incremental).
"$VBIN" prompts build --dir "$OUT/prompts" --area 0113 > "$OUT/prompts.log" 2>&1

RUST_LOG=info "$VBIN" serve --config "$OUT/veertien.toml" > "$OUT/serve.stdout" 2> "$OUT/serve.log" &
VPID=$!
(cd "$OUT" && exec sipp -sf "$ROOT/crates/server/tests/sipp/uas_answer.xml" -i 127.0.0.1 -p "$UAS" -mp $((UAS + 2)) \
    -rtp_echo -nostdin -fd 5 -trace_stat -stf uas_stat.csv > uas.out 2>&1) &
UPID=$!
cleanup() { kill -TERM "$VPID" 2>/dev/null || true; kill -TERM "$UPID" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  grep -q "speech recogniser loaded" "$OUT/serve.log" && break
  kill -0 "$VPID" 2>/dev/null || { echo "serve exited:"; tail -20 "$OUT/serve.log"; exit 1; }
  sleep 0.2
done
grep -q "speech recogniser loaded" "$OUT/serve.log" || { echo "the model did not load:"; tail -20 "$OUT/serve.log"; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
now_ms() { date +%s%3N; }
: > "$OUT/steps.tsv"
for n in $LEVELS; do
  dir="$OUT/level-$n"; mkdir -p "$dir"; cp "$OUT/caller.pcap" "$dir/"
  calls=$((n * PER_SLOT))
  c0=$(cpu_ticks "$VPID"); t0=$(now_ms)
  # -rp 16000: the first n calls start over 16 s, not all in the same 20 ms.
  (cd "$dir" && sipp "127.0.0.1:$VPORT" -sf "$ROOT/crates/server/tests/sipp/ivr_uac_play_bye.xml" -s 140113 \
      -i 127.0.0.1 -p $((VPORT + 100)) -mp $((VPORT + 1000)) -d "$HOLD" -l "$n" -r "$n" -rp 16000 -m "$calls" \
      -timeout 300s -nostdin -trace_stat -stf stat.csv -fd 5 > sipp.out 2>&1 || true)
  # Records are written when calls end; the last BYEs are a moment behind SIPp's exit.
  sleep 2
  t1=$(now_ms); c1=$(cpu_ticks "$VPID")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$t0" "$t1" $((c1 - c0)) "$HZ" \
      "$(status_kb "$VPID" VmRSS)" "$(status_kb "$VPID" VmHWM)" "$(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/steps.tsv"
  echo "level $n: $calls calls in $(( (t1 - t0) / 1000 )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
"$VBIN" calls --json --config "$OUT/veertien.toml" --limit 10000 > "$OUT/calls.jsonl"
python3 "$ROOT/scripts/bench/ivr_analyse.py" "$OUT/calls.jsonl" "$OUT/steps.tsv" "$KAPELLE" | tee "$OUT/results.tsv"
