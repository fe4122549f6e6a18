#!/usr/bin/env python3
"""Generate a synthetic telephone test set for `veertien speech eval`.

For every area code that several municipalities share (data/numberplan/netnummergebieden.csv),
each municipality's name is spoken with espeak-ng (Dutch voice variants, speeds, pitches), with
or without a carrier phrase ("gemeente X", "ik wil X", "ehm X", …), then sent through a
telephone channel with sox: 300–3400 Hz band-pass, 8 kHz, G.711 (µ-law or A-law) round trip,
optional background noise. Output: WAVs plus `manifest.tsv` lines
`wav_path<TAB>expected<TAB>cand;cand;…` (paths relative to the manifest).

Synthetic speech is a smoke test, not a prediction for real callers. Do not train or tune the
model on it; only the confidence temperature is fitted on it (documented in
docs/PERFORMANCE-speech.md).

Spoken form: the name as callers say it — CBS qualifiers like "(NH.)" dropped unless that
would make two candidates in the same group identical, and "'s-Gravenhage" /
"'s-Hertogenbosch" spoken as "Den Haag" / "Den Bosch" (the ROO short names).

Usage: scripts/speech/make_testset.py [--out DIR] [--per-name N] [--seed S] [--max-groups K]
Requires: espeak-ng, sox (Debian packages). Standard library only.
"""
import argparse
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAN = os.path.join(ROOT, "data", "numberplan")

VOICES = ["nl", "nl+m1", "nl+m3", "nl+m7", "nl+f2", "nl+f3", "nl+f4", "nl+klatt2"]
CARRIERS = ["{}", "{}", "gemeente {}", "ik wil {}", "ehm, {}", "ik wil graag {}", "ja, {} graag"]
SPOKEN = {"'s-Gravenhage": "Den Haag", "'s-Hertogenbosch": "Den Bosch"}


def spoken(name):
    return SPOKEN.get(name, re.sub(r"\s*\([^)]*\)\s*$", "", name).strip())


def groups():
    path = os.path.join(PLAN, "netnummergebieden.csv")
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            names = [n for n in row["municipality_names"].split(";") if n]
            if len(names) < 2:
                continue
            forms = [spoken(n) for n in names]
            if len(set(forms)) != len(forms):  # keep qualifiers where needed to stay distinct
                forms = names
            for n in forms:
                if ";" in n or "\t" in n:
                    sys.exit(f"{path}:{line_no}: name {n!r} contains a manifest separator")
            yield row["area_code"], forms


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{r.stderr.decode(errors='replace')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "speech-testset"))
    ap.add_argument("--per-name", type=int, default=2, help="utterances per (area code, municipality)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--max-groups", type=int, default=0, help="only the first K shared area codes (0 = all)")
    args = ap.parse_args()
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install -y {tool})")
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.out, "wav"), exist_ok=True)
    lines = []
    gs = list(groups())
    if args.max_groups:
        gs = gs[: args.max_groups]
    with tempfile.TemporaryDirectory() as tmp:
        for code, cands in gs:
            for name in cands:
                for k in range(args.per_name):
                    voice = rng.choice(VOICES)
                    speed = rng.choice([130, 150, 165, 180])
                    pitch = rng.randint(30, 70)
                    text = rng.choice(CARRIERS).format(name)
                    codec = rng.choice(["u-law", "a-law"])
                    noise = rng.choice([0.0, 0.0, 0.003, 0.01])
                    out_pcm = rng.random() < 0.7  # some files stay G.711-encoded WAVs
                    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
                    rel = f"wav/{code}-{slug}-{k}.wav"
                    raw = os.path.join(tmp, "raw.wav")
                    tel = os.path.join(tmp, "tel.wav")
                    g711 = os.path.join(tmp, "g711.wav")
                    run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", raw, text])
                    # Telephone channel: band-pass, 8 kHz, 0.2 s lead-in/out like an endpointed utterance.
                    run(["sox", raw, "-r", "8000", "-c", "1", "-b", "16", tel,
                         "highpass", "300", "lowpass", "3400", "pad", "0.2", "0.2", "norm", "-3"])
                    if noise > 0:
                        dur = subprocess.run(["soxi", "-D", tel], stdout=subprocess.PIPE).stdout.decode().strip()
                        nz = os.path.join(tmp, "noise.wav")
                        run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", nz, "synth", dur, "pinknoise", "vol", str(noise * 10)])
                        mixed = os.path.join(tmp, "mixed.wav")
                        run(["sox", "-m", tel, nz, mixed])
                        os.replace(mixed, tel)
                    run(["sox", tel, "-e", codec, "-b", "8", g711])
                    dst = os.path.join(args.out, rel)
                    if out_pcm:
                        run(["sox", g711, "-e", "signed-integer", "-b", "16", dst])
                    else:
                        shutil.copyfile(g711, dst)
                    lines.append(f"{rel}\t{name}\t{';'.join(cands)}")
    manifest = os.path.join(args.out, "manifest.tsv")
    with open(manifest, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} utterances over {len(gs)} shared area codes -> {manifest}")


if __name__ == "__main__":
    main()
