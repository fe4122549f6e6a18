#!/usr/bin/env python3
"""The IVR caller's audio as a pcap for SIPp's play_pcap_audio (stdlib only).

    ivr_pcap.py OUT.pcap --say NAME [ANSWER]
    ivr_pcap.py OUT.pcap SPEECH.ul [ANSWER.ul]
    ivr_pcap.py OUT.pcap --key DIGIT [--hold MS]

--say (scripts/bench/ivr.sh, scripts/load/run.sh): NAME and ANSWER spoken by espeak-ng (Dutch,
150 words a minute), telephone band (sox, 300-3400 Hz), G.711 u-law 8 kHz, as the Rust tests'
speak_ulaw; needs espeak-ng and sox. SPEECH.ul / ANSWER.ul: such audio made beforehand. The
caller is quiet for 2.5 s (the welcome plays), says the name (speech barge-in), is quiet for
2.5 s, says the answer ("ja": heard only if the platform asks "Bedoelt u …?"; otherwise it goes
to the municipality once the call is put through), then stays on the line with quiet RTP for
30 s so neither the dialogue nor the bridge sees a dead line.

--key (scripts/load/run.sh): quiet for 1.2 s, then DIGIT as RFC 4733 events (PT 101, 100 ms,
three end packets) during the welcome, then quiet RTP for --hold ms (default 8000).

Same packet layout as the Rust tests' writer (crates/server/tests/ivr_support/mod.rs): RTP
PT 0, 20 ms per packet.
"""
import os
import struct
import subprocess
import sys
import tempfile

SILENCE = 0xFF


class Capture:
    def __init__(self) -> None:
        self.seq, self.ts, self.at_us = 1000, 16000, 0
        self.packets = []  # (microseconds since start, RTP packet)

    def _packet(self, pt: int, marker: bool, ts: int, payload: bytes) -> None:
        rtp = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), self.seq, ts, 0x12345678) + payload
        self.packets.append((self.at_us, rtp))
        self.seq = (self.seq + 1) & 0xFFFF

    def ulaw(self, audio: bytes) -> None:
        for i in range(0, len(audio), 160):
            self._packet(0, False, self.ts, bytes(audio[i:i + 160]).ljust(160, bytes([SILENCE])))
            self.ts = (self.ts + 160) & 0xFFFFFFFF
            self.at_us += 20_000

    def silence(self, ms: int) -> None:
        self.ulaw(bytes([SILENCE] * 8 * ms))

    def key(self, key: str) -> None:
        code = "0123456789*#".index(key)
        ts = self.ts
        for i in range(1, 6):
            dur = i * 160
            self._packet(101, i == 1, ts, bytes([code, 10]) + struct.pack("!H", dur))
            self.at_us += 20_000
        for _ in range(3):
            self._packet(101, False, ts, bytes([code, 0x80 | 10, 0x03, 0x20]))
        self.ts = (self.ts + 800) & 0xFFFFFFFF

    def write(self, out: str) -> None:
        with open(out, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for at_us, rtp in self.packets:
                udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
                ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                                           bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])))
                s = sum(struct.unpack("!10H", bytes(ip)))
                s = (s & 0xFFFF) + (s >> 16)
                ip[10:12] = struct.pack("!H", ~s & 0xFFFF)
                frame = bytes(12) + b"\x08\x00" + bytes(ip) + udp
                f.write(struct.pack("<IIII", 1_700_000_000 + at_us // 1_000_000, at_us % 1_000_000, len(frame), len(frame)))
                f.write(frame)


def spoken(text: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        wav, ul = os.path.join(d, "speech.wav"), os.path.join(d, "speech.ul")
        subprocess.run(["espeak-ng", "-v", "nl", "-s", "150", "-w", wav, text], check=True)
        subprocess.run(["sox", wav, "-r", "8000", "-c", "1", "-t", "ul", ul, "sinc", "300-3400"], check=True)
        with open(ul, "rb") as f:
            return f.read()


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    out, c = args[0], Capture()
    if args[1] == "--key":
        if len(args) < 3 or len(args[2]) != 1 or args[2] not in "0123456789*#":
            sys.exit("--key takes one keypad key: 0-9, * or #")
        hold = int(args[4]) if len(args) > 4 and args[3] == "--hold" else 8000
        c.silence(1200)
        c.key(args[2])
        c.silence(hold)
    else:
        if args[1] == "--say":
            if len(args) < 3:
                sys.exit("--say takes the name to say, then optionally the answer")
            name, answer = spoken(args[2]), (spoken(args[3]) if len(args) > 3 else None)
        else:
            name = open(args[1], "rb").read()
            answer = open(args[2], "rb").read() if len(args) > 2 else None
        c.silence(2500)
        c.ulaw(name)
        c.silence(2500)
        if answer:
            c.ulaw(answer)
        c.silence(30_000)
    c.write(out)


if __name__ == "__main__":
    main()
