#!/usr/bin/env python3
"""Per-step figures of scripts/bench/ivr.sh from the call records (stdlib only).

    ivr_analyse.py CALLS.jsonl STEPS.tsv EXPECTED_CBS

CALLS.jsonl: `veertien calls --json` (one record per line). STEPS.tsv: one line per step,
written by ivr.sh: level, t0_ms, t1_ms, cpu_ticks, hz, rss_kb, hwm_kb, load1. A call belongs to
the step in whose window it was received. Prints a TSV: concurrency, IVR calls, reached the
expected municipality (answered there), failed (everything else, by outcome), decision latency
after the VAD's end of speech p50/p95/max (first utterance of each call, `recognised`
entries), the same counted from the end of the caller's audio (what the caller perceives:
includes the VAD's 500 ms remaining hangover), share answered from background scoring, CPU ms
of `serve` per IVR call, RSS and peak RSS (MB), load average at the end of the step.
"""
import collections
import json
import sys


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    calls_path, steps_path, expected = sys.argv[1], sys.argv[2], sys.argv[3]
    calls = [json.loads(l) for l in open(calls_path) if l.strip()]
    calls = [c for c in calls if c.get("decision_kind") == "ask"]
    print("concurrency\tcalls\tright_destination\tfailed\tfailures\tlatency_p50_ms\tlatency_p95_ms\tlatency_max_ms"
          "\tafter_audio_p50_ms\tafter_audio_p95_ms\tbackground_share\tcpu_ms_per_call\trss_mb\tpeak_rss_mb\tload1")
    for line in open(steps_path):
        level, t0, t1, ticks, hz, rss, hwm, load1 = line.split()
        t0, t1 = int(t0), int(t1)
        step = [c for c in calls if t0 <= c["received_ms"] < t1]
        ok = [c for c in step if c.get("municipality_cbs") == expected and c.get("outcome") == "answered"]
        bad = collections.Counter(f'{c.get("outcome")}:{c.get("municipality_cbs")}' for c in step if c not in ok)
        lat, after, spec = [], [], []
        for c in step:
            recs = [e for e in ((c.get("ivr") or {}).get("entries") or []) if e.get("what") == "recognised"]
            if recs:
                lat.append(recs[0]["latency_ms"])
                if "after_audio_ms" in recs[0]:
                    after.append(recs[0]["after_audio_ms"])
                if "speculative" in recs[0]:
                    spec.append(1 if recs[0]["speculative"] else 0)
        cpu_ms = int(ticks) * 1000 / int(hz)
        per_call = cpu_ms / len(step) if step else float("nan")
        share = sum(spec) / len(spec) if spec else float("nan")
        print(f"{level}\t{len(step)}\t{len(ok)}\t{len(step) - len(ok)}\t{dict(bad) or '-'}"
              f"\t{pct(lat, 50)}\t{pct(lat, 95)}\t{max(lat) if lat else 'nan'}"
              f"\t{pct(after, 50)}\t{pct(after, 95)}\t{share:.2f}\t{per_call:.0f}"
              f"\t{int(rss) / 1024:.0f}\t{int(hwm) / 1024:.0f}\t{load1}")


if __name__ == "__main__":
    main()
