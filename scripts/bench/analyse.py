#!/usr/bin/env python3
"""One results.tsv row from a SIPp step: failed calls from the SIPp statistics CSV, response
times (INVITE -> 302, SIPp rtd) from the _rtt.csv files, CPU and memory from the caller."""
import csv, glob, sys

name, rate, calls, d, ticks, hz, pss, t0, t1 = sys.argv[1:10]
calls = int(calls)
stat = sorted(glob.glob(f"{d}/stat.csv"))
succ = fail = 0
if stat:
    rows = list(csv.reader(open(stat[0]), delimiter=";"))
    hdr, last = rows[0], rows[-1]
    succ = int(last[hdr.index("SuccessfulCall(C)")])
    fail = int(last[hdr.index("FailedCall(C)")])
rtts = []
for f in glob.glob(f"{d}/*_rtt.csv"):
    for row in csv.reader(open(f), delimiter=";"):
        try:
            rtts.append(float(row[2]))
        except (ValueError, IndexError):
            pass
rtts.sort()
def pct(p):
    return rtts[min(len(rtts) - 1, int(len(rtts) * p))] if rtts else float("nan")
elapsed = float(t1) - float(t0)
handled = max(succ + fail, 1)
cpu_us = int(ticks) / int(hz) * 1e6 / handled
print(f"{name}\t{rate}\t{calls}\t{succ}\t{fail}\t{succ / elapsed:.0f}\t{cpu_us:.1f}\t{pss}\t{pct(0.5):.3f}\t{pct(0.95):.3f}")
