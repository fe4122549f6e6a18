#!/usr/bin/env bash
# Build and run one cargo-fuzz target (or all in turn) for a number of seconds.
#   scripts/fuzz.sh <target|all> <seconds> [extra libFuzzer flags]
#   scripts/fuzz.sh list | seeds   (list targets | only regenerate the seed corpora)
#   scripts/fuzz.sh --smoke        (CI: every target replays its seeds, committed regressions and any
#                                   local corpus, then fuzzes SMOKE_SECS (5) s; coverage-instrumented
#                                   plain cargo build, no cargo-fuzz, no sanitizer, no nightly flags)
#   scripts/fuzz.sh --smoke-web    (the same for the portal targets in fuzz/web; a much heavier build)
# Seeds are regenerated from the repository's real data on every run (see seed_* below) into
# fuzz/target/seeds/<target>; the growing corpus lives in fuzz/corpus/<target> (git-ignored);
# crashes land in fuzz/artifacts/<target>. Committed regressions in fuzz/regressions/<target>
# are replayed first and must not crash.
#
# Why RUSTC_BOOTSTRAP=1: cargo-fuzz passes nightly-only flags (-Zsanitizer=address, and
# -Cpasses=sancov-module instrumentation); only the stable toolchain is installed here and
# rustup cannot download nightly. RUSTC_BOOTSTRAP=1 lets stable rustc accept -Z flags. It is
# used for fuzz builds only, never for the product.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ="$ROOT/fuzz"
TARGETS=(sip_message sip_tcp_framer sdp_answer rtp_packet dialled_number settings_toml plan_csv spoken_text)
# The portal's parsers live in their own fuzz crate (fuzz/web): veertien-web pulls in the whole
# server, which would make every build of the core targets (and the CI smoke) several times slower.
# They build without AddressSanitizer (-s none): the code under test is safe Rust, and an ASan
# build of the server's dependency tree (speech runtime, TLS, SQLite) costs more than it finds.
WEB_TARGETS=(portal_json portal_form prompt_upload)
is_web() { [[ " ${WEB_TARGETS[*]} " == *" $1 "* ]]; }
export RUSTC_BOOTSTRAP=1

usage() { echo "usage: $0 <target|all|list> <seconds> [libFuzzer flags]" >&2; echo "targets: ${TARGETS[*]} ${WEB_TARGETS[*]}" >&2; exit 2; }

need_cargo_fuzz() { command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 1; }; }

# One file per seed; $1 = dir, $2 = name, stdin = content.
put() { cat > "$1/$2"; }

seed_sip() { # $1 = dir, $2 = prefix byte for the framer (empty for datagrams)
  local dir="$1" pre="$2" f i=0
  for f in "$ROOT"/data/sip/rfc4475/*.dat; do
    { printf "$pre"; cat "$f"; } | put "$dir" "rfc4475-$(basename "$f" .dat)"
  done
  # SIPp scenario messages with their [keywords] filled in, CRLF line ends as on the wire.
  for f in "$ROOT"/crates/server/tests/sipp/*.xml; do
    python3 - "$f" <<'PY' | while IFS= read -r -d '' msg; do i=$((i+1)); { printf "$pre"; printf '%s' "$msg"; } | put "$dir" "sipp-$(basename "$f" .xml)-$i"; done
import re, sys
subs = {"service": "140113", "remote_ip": "127.0.0.1", "remote_port": "5060", "local_ip": "127.0.0.1",
        "local_port": "5061", "transport": "UDP", "call_number": "1", "call_id": "1-fuzz@127.0.0.1",
        "media_ip": "127.0.0.1", "media_port": "6000", "media_ip_type": "4", "local_ip_type": "4",
        "pid": "42", "branch": "z9hG4bK-fuzz-1", "cseq": "1", "peer_tag_param": ";tag=peer",
        "last_Via:": "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-fuzz-1",
        "last_From:": "From: <sip:fuzz@127.0.0.1>;tag=1", "last_To:": "To: <sip:140113@127.0.0.1>;tag=2",
        "last_Call-ID:": "Call-ID: 1-fuzz@127.0.0.1", "last_CSeq:": "CSeq: 1 INVITE", "len": "0"}
text = open(sys.argv[1]).read()
for m in re.findall(r"<!\[CDATA\[(.*?)\]\]>", text, re.S):
    lines = [l.strip() for l in m.strip().splitlines()]
    head, _, body = "\n".join(lines).partition("\n\n")
    body = body.strip()
    def sub(x):
        return re.sub(r"\[([^\]]+)\]", lambda k: str(len(body.replace("\n", "\r\n")) + 2 if body else 0) if k.group(1) == "len" else subs.get(k.group(1), "x"), x)
    body = sub(body)
    msg = sub(head).replace("\n", "\r\n") + "\r\n\r\n" + (body.replace("\n", "\r\n") + "\r\n" if body else "")
    sys.stdout.write(msg + "\0")
PY
  done
}

seed_sdp() { # media-test offers plus every SDP body in the torture messages
  local dir="$1" n=0 f
  for flags in '\x00' '\x0d' '\x86'; do
    printf "${flags}v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n" | put "$dir" "sipp-offer-$((n++))"
    printf "${flags}v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6002 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n" | put "$dir" "relay-offer-$((n++))"
    printf "${flags}v=0\r\no=- 9 9 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=video 0 RTP/AVP 31\r\nm=audio 6004 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=ptime:20\r\na=sendonly\r\n" | put "$dir" "ipv6-hold-$((n++))"
    printf "${flags}v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 6006 RTP/AVP 97 8\r\na=rtpmap:97 PCMA/8000\r\na=inactive\r\n" | put "$dir" "dynamic-pt-$((n++))"
  done
  for f in "$ROOT"/data/sip/rfc4475/*.dat; do
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); i=d.find(b"\r\n\r\nv=0"); sys.stdout.buffer.write(b"\x0c"+d[i+4:] if i>=0 else b"")' "$f" > "$dir/rfc4475-$(basename "$f" .dat)"
    [ -s "$dir/rfc4475-$(basename "$f" .dat)" ] || rm -f "$dir/rfc4475-$(basename "$f" .dat)"
  done
}

seed_rtp() {
  local dir="$1"
  printf '\x80\x08\x00\x01\x00\x00\x00\xa0\x12\x34\x56\x78\xd5\xd5\xd5\xd5' | put "$dir" pcma
  printf '\x80\xe5\x00\x02\x00\x00\x01\x40\x12\x34\x56\x78\x05\x0a\x00\xa0' | put "$dir" dtmf-5-start
  printf '\x80\x65\x00\x03\x00\x00\x01\x40\x12\x34\x56\x78\x05\x8a\x03\x20' | put "$dir" dtmf-5-end
  printf '\xb1\x00\x00\x04\x00\x00\x01\x40\x12\x34\x56\x78\x00\x00\x00\x01\xbe\xde\x00\x01\x10\xff\x00\x00\x00\x02' | put "$dir" csrc-ext-padding
  printf '\x81\xc8\x00\x0c\x12\x34\x56\x78\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x81\xca\x00\x02\x12\x34\x56\x78\x01\x00\x00\x00' | put "$dir" rtcp-sr-sdes
  printf 'application/dtmf-relay\nSignal=5\r\nDuration=160\r\n' | put "$dir" info-relay
  printf 'application/dtmf\n#' | put "$dir" info-dtmf
}

seed_numbers() {
  local dir="$1"
  # Every string literal of the core number/decision tests, with {code}/{fourteen} filled in
  # from real area codes and Rust \u{..} escapes decoded.
  python3 - "$dir" "$ROOT"/crates/core/tests/normalise.rs "$ROOT"/crates/core/tests/decide.rs <<'PY'
import re, sys
out, files = sys.argv[1], sys.argv[2:]
seen = set()
for f in files:
    for lit in re.findall(r'"((?:[^"\\]|\\.){1,80})"', open(f).read()):
        if not re.search(r"[0-9{]", lit):
            continue
        lit = re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda m: chr(int(m.group(1), 16)), lit)
        lit = lit.replace("\\t", "\t").replace('\\"', '"')
        for code in ("020", "0113", "0578", "0111"):
            seen.add(lit.replace("{fourteen}", "14" + code).replace("{code}", code))
for i, s in enumerate(sorted(seen)):
    open(f"{out}/form-{i}", "w").write(s)
PY
  printf '14 0113\n0113-212345' | put "$dir" with-caller
  printf '+31140578\n+31 6 12345678' | put "$dir" with-mobile-caller
}

seed_settings() {
  local dir="$1"
  awk '/^```toml/{f=1; n++; next} /^```/{f=0} f{print > (d "/settings-md-" n)}' d="$dir" "$ROOT/docs/SETTINGS.md"
  # Every raw-string TOML document of the core settings tests.
  python3 - "$dir" "$ROOT"/crates/core/tests/settings.rs <<'PY'
import re, sys
for i, doc in enumerate(re.findall(r'r#"(.*?)"#', open(sys.argv[2]).read(), re.S)):
    open(f"{sys.argv[1]}/settings-test-{i}", "w").write(doc)
for i, lit in enumerate(re.findall(r'err\("((?:[^"\\]|\\.)*)"\)', open(sys.argv[2]).read())):
    open(f"{sys.argv[1]}/settings-err-{i}", "w").write(lit.replace("\\n", "\n").replace('\\"', '"'))
PY
}

seed_plan() {
  local dir="$1" i=0 f
  for f in gemeenten gemeenten_contact netnummergebieden netnummers woonplaatsen herindelingen; do
    { printf "\\x$(printf %02x $i)"; cat "$ROOT/data/numberplan/$f.csv"; } | put "$dir" "$f"
    # A short head of each file keeps mutations fast.
    { printf "\\x$(printf %02x $i)"; head -n 40 "$ROOT/data/numberplan/$f.csv"; } | put "$dir" "$f-head"
    i=$((i+1))
  done
}

seed_names() {
  local dir="$1"
  # Spoken forms: municipality names (CBS column 2) and places, with a shared-code selector byte.
  tail -n +2 "$ROOT/data/numberplan/gemeenten.csv" | cut -d, -f2 | head -n 400 | awk -v d="$dir" '{printf "\x80%s", $0 > (d "/muni-" NR)}'
  tail -n +2 "$ROOT/data/numberplan/woonplaatsen.csv" | cut -d, -f1 | shuf -n 100 --random-source=<(yes) | awk -v d="$dir" '{printf "\x85ik wil %s", $0 > (d "/place-" NR)}'
  printf '\x83\x01\x00\x02\x00\x03\x00euh kapelle of goes' | put "$dir" mixed
}

# Portal seeds from the real number plan: for municipalities of gemeenten_contact.csv their real
# general number (or 14+ number) as destination, opening hours, holidays, exception days, menu
# digits; $2 = json | form. The first byte selects the body kind (json: low 2 bits) and the
# municipality/language, as the targets read it.
seed_portal() {
  python3 - "$1" "$2" "$ROOT/data/numberplan/gemeenten_contact.csv" <<'PY'
import csv, json, sys, urllib.parse
out, kind, src = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [r for r in csv.DictReader(open(src, encoding="utf-8"))][:40]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
for i, r in enumerate(rows):
    raw = (r["general_phone_raw"] or "").strip() or "14" + r["area_code_of_phone"]
    weekly = {d: (["08:30-12:00", "13:00-17:00"] if d in days[:5] else []) for d in days}
    if i % 3 == 1:
        weekly["thu"] = ["08:30-20:00"]
    doc = {"status": ["active", "technical", "not_connected"][i % 3], "destination": raw,
           "mode": "bridge" if i % 2 else "redirect", "menu_digit": (i % 10) if i % 4 == 0 else None,
           "overflow_destination": "088 123 4567" if i % 5 == 0 else None,
           "overflow_no_answer_secs": 20 if i % 5 == 0 else None,
           "calamity_active": i % 7 == 0, "calamity_destination": "0800 1351" if i % 7 == 0 else None,
           "calamity_message": "Storing: bel later terug" if i % 7 == 0 else "",
           "forward_when_not_connected": i % 2 == 0, "languages": ["nl", "en"] if i % 2 else ["nl"],
           "opening_hours": {"always_open": i % 11 == 0, "weekly": weekly,
                             "closed_on": ["koningsdag", "eerste_kerstdag", "tweede_pinksterdag"][: i % 4],
                             "exceptions": [{"date": "2026-12-24", "hours": ["08:30-14:00"], "note": "Kerstavond: tot 14:00"}] if i % 2 else []}}
    if r["area_code_of_phone"]:
        doc["menu_digits"] = {r["area_code_of_phone"]: i % 10}
    sel = (i * 2 + (i % 2)) & 0x3f
    if kind == "json":
        body = json.dumps({"version": i, "settings": doc}, ensure_ascii=False)
        open(f"{out}/settings-{i}", "wb").write(bytes([sel << 2]) + body.encode())
    else:
        pairs = [(k, doc[k]) for k in ("status", "destination", "mode", "calamity_message")]
        for k in ("menu_digit", "overflow_destination", "overflow_no_answer_secs", "calamity_destination"):
            if doc[k] is not None:
                pairs.append((k, doc[k]))
        for k in ("calamity_active", "forward_when_not_connected"):
            if doc[k]:
                pairs.append((k, "true"))
        pairs += [("languages", l) for l in doc["languages"]]
        oh = doc["opening_hours"]
        if oh["always_open"]:
            pairs.append(("always_open", "true"))
        pairs += [(f"hours.{d}", ", ".join(v)) for d, v in oh["weekly"].items()]
        pairs += [("closed_on", h) for h in oh["closed_on"]]
        for j, e in enumerate(oh["exceptions"]):
            pairs += [(f"exceptions.{j}.date", e["date"]), (f"exceptions.{j}.hours", ", ".join(e["hours"]) or "gesloten"), (f"exceptions.{j}.note", e["note"])]
        pairs += [(f"menu_digits.{k}", v) for k, v in doc.get("menu_digits", {}).items()]
        open(f"{out}/form-{i}", "wb").write(bytes([sel]) + urllib.parse.urlencode(pairs).encode())
if kind == "json":
    inc = {"title_nl": "Storing 14 0113", "title_en": "Outage 14 0113", "severity": "major",
           "municipalities": ["GM0664", "Kapelle", "0113"], "text_nl": "De lijn is gestoord.",
           "next_update": "2026-11-23T14:00:00+01:00"}
    open(f"{out}/incident", "wb").write(bytes([1]) + json.dumps(inc).encode())
    upd = {"text_nl": "Opgelost", "text_en": "Resolved", "next_update": "2026-11-23T15:00:00Z"}
    open(f"{out}/update", "wb").write(bytes([2]) + json.dumps(upd).encode())
    con = {"contacts": [{"email": "klantcontact@goes.nl", "name": "KCC Goes"}], "webhook_url": "https://status.goes.nl/hook"}
    open(f"{out}/contacts", "wb").write(bytes([3]) + json.dumps(con).encode())
PY
}

# Upload seeds: the portal tests' real MP3 (44.1 kHz stereo) and short WAVs in the formats people
# upload (8/16/44.1/48 kHz, mono/stereo, 16-bit and 8-bit PCM), each ~0.6-1 s of speech-like tone.
seed_prompt() {
  cp "$ROOT/crates/web/tests/data/welkom-44k-stereo.mp3" "$1/welkom-44k-stereo.mp3"
  python3 - "$1" <<'PY'
import math, struct, sys, wave
out = sys.argv[1]
for rate, ch, width, secs in [(8000, 1, 2, 0.8), (16000, 1, 2, 0.6), (44100, 2, 2, 0.6), (48000, 1, 2, 0.6), (22050, 1, 1, 0.7)]:
    n = int(rate * secs)
    frames = bytearray()
    for i in range(n):
        v = 0.3 * math.sin(2 * math.pi * 220 * i / rate) * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * i / rate))
        for _ in range(ch):
            frames += struct.pack("<h", int(v * 32767)) if width == 2 else bytes([int(128 + v * 127)])
    w = wave.open(f"{out}/tone-{rate}-{ch}ch-{8 * width}bit.wav", "wb")
    w.setnchannels(ch); w.setsampwidth(width); w.setframerate(rate); w.writeframes(bytes(frames)); w.close()
PY
}

seed() {
  local t="$1" dir="$FUZZ/target/seeds/$1"
  rm -rf "$dir"; mkdir -p "$dir"
  case "$t" in
    sip_message) seed_sip "$dir" "" ;;
    sip_tcp_framer) seed_sip "$dir" '\x00'; mkdir -p "$dir/x"; seed_sip "$dir/x" '\x07'; for f in "$dir"/x/*; do mv "$f" "$dir/seg7-$(basename "$f")"; done; rmdir "$dir/x" ;;
    sdp_answer) seed_sdp "$dir" ;;
    rtp_packet) seed_rtp "$dir" ;;
    dialled_number) seed_numbers "$dir" ;;
    settings_toml) seed_settings "$dir" ;;
    plan_csv) seed_plan "$dir" ;;
    spoken_text) seed_names "$dir" ;;
    portal_json) seed_portal "$dir" json ;;
    portal_form) seed_portal "$dir" form ;;
    prompt_upload) seed_prompt "$dir" ;;
  esac
  echo "$dir"
}

run() {
  local t="$1" secs="$2"; shift 2
  local seeds corpus="$FUZZ/corpus/$t" reg="$FUZZ/regressions/$t"
  seeds="$(seed "$t")"
  local fz=(--fuzz-dir "$FUZZ") san=()
  if is_web "$t"; then fz=(--fuzz-dir "$FUZZ/web"); san=(-s none); fi
  mkdir -p "$corpus" "${fz[1]}/artifacts/$t"
  cd "$FUZZ"
  cargo fuzz build "${fz[@]}" -O "${san[@]}" "$t"
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    echo "== $t: replaying regressions"
    cargo fuzz run "${fz[@]}" -O "${san[@]}" "$t" "$reg"/* -- -runs=1
  fi
  echo "== $t: ${secs}s, seeds $(ls "$seeds" | wc -l), corpus $(ls "$corpus" | wc -l)"
  local log="$FUZZ/target/fuzz-$t.log"
  set +e
  cargo fuzz run "${fz[@]}" -O "${san[@]}" "$t" "$corpus" "$seeds" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" 2>&1 | tee "$log" | grep -E '^#[0-9]+.*(pulse|DONE)|ERROR|panicked|SUMMARY|stat::number_of_executed_units|Test unit written'
  local rc=${PIPESTATUS[0]}
  set -e
  local execs; execs="$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}')"
  echo "== $t: executions ${execs:-?}, exit $rc, log $log"
  return "$rc"
}

# CI smoke: a short, real coverage-guided fuzzing run of every target, starting from its seeds,
# the committed regressions and any local corpus (all replayed first, so a known crash fails at
# once). Built with the instrumentation flags cargo-fuzz itself passes (sanitizer coverage,
# --cfg fuzzing) but without AddressSanitizer, and with plain cargo: every flag used is a stable
# -C flag, so CI needs neither cargo-fuzz (whose install alone costs ~4 min from source) nor
# RUSTC_BOOTSTRAP. The code under test is safe Rust; panics, overflow checks and debug
# assertions (profile smoke) are what a crash is here. Any crash exits non-zero naming the input.
# SMOKE_SECS (default 5) is the fuzzing time per target after its corpus is replayed.
SANCOV_FLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
smoke() { # $1 = crate dir (fuzz or fuzz/web), rest = its targets
  unset RUSTC_BOOTSTRAP
  local crate="$1"; shift
  local out="$crate/target/smoke" t fail=0 n start secs="${SMOKE_SECS:-5}" host
  host="$(rustc -vV | sed -n 's/^host: //p')"
  # --target keeps the flags off build scripts and proc macros (as cargo-fuzz does).
  RUSTFLAGS="$SANCOV_FLAGS" cargo build --manifest-path "$crate/Cargo.toml" --profile smoke --bins \
    --target "$host" --target-dir "$out" -q
  for t in "$@"; do
    start=$(date +%s)
    local seeds; seeds="$(seed "$t")"
    # The fuzzer writes new inputs into its first directory: a scratch copy of the local
    # corpus (a long run may be growing the real one meanwhile), never the repository.
    local work="$out/corpus-$t"
    rm -rf "$work"; mkdir -p "$work" "$out/artifacts/$t"
    cp -r "$FUZZ/corpus/$t/." "$work/" 2>/dev/null || true
    local dirs=("$work" "$seeds")
    [ -d "$FUZZ/regressions/$t" ] && dirs+=("$FUZZ/regressions/$t")
    n=$(find "${dirs[@]}" -type f | wc -l)
    if "$out/$host/smoke/$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t/" "${dirs[@]}" > "$out/$t.log" 2>&1; then
      local execs; execs="$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$out/$t.log" | awk '{print $2}')"
      echo "smoke $t: $n inputs replayed, ${execs:-?} executions in ${secs}s of fuzzing, no crash ($(( $(date +%s) - start )) s)"
    else
      echo "smoke $t: CRASH (inputs: $n replayed + fuzzing); crashing input in $out/artifacts/$t/, log $out/$t.log" >&2
      grep -E "panicked|ERROR|deadly|Test unit written|SUMMARY" "$out/$t.log" | head -n 20 >&2
      fail=1
    fi
  done
  return "$fail"
}

[ $# -ge 1 ] || usage
case "$1" in
  --smoke) smoke "$FUZZ" "${TARGETS[@]}"; exit $? ;;
  --smoke-web) smoke "$FUZZ/web" "${WEB_TARGETS[@]}"; exit $? ;;
  list) printf '%s\n' "${TARGETS[@]}" "${WEB_TARGETS[@]}" ;;
  seeds) for t in "${TARGETS[@]}" "${WEB_TARGETS[@]}"; do d="$(seed "$t")"; echo "$t: $(ls "$d" | wc -l) seeds in $d"; done ;;
  all) [ $# -ge 2 ] || usage; need_cargo_fuzz; secs="$2"; shift 2; fail=0
       for t in "${TARGETS[@]}" "${WEB_TARGETS[@]}"; do run "$t" "$secs" "$@" || fail=1; done; exit "$fail" ;;
  *) [ $# -ge 2 ] || usage; [[ " ${TARGETS[*]} ${WEB_TARGETS[*]} " == *" $1 "* ]] || usage; need_cargo_fuzz; run "$@" ;;
esac
