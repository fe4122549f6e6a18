#!/usr/bin/env python3
"""The IVR benchmark caller's audio as a pcap for SIPp's play_pcap_audio (stdlib only).

    ivr_pcap.py OUT.pcap SPEECH.ul [ANSWER.ul]

SPEECH.ul / ANSWER.ul: G.711 u-law, 8 kHz (espeak-ng + sox, see scripts/bench/ivr.sh). The
caller is quiet for 2.5 s (the welcome plays), says the name (speech barge-in), is quiet for
2.5 s, says the answer ("ja": heard only if the platform asks "Bedoelt u …?"; otherwise it goes
to the municipality once the call is put through), then stays on the line with quiet RTP for
30 s so neither the dialogue nor the bridge sees a dead line. Same packet layout as the Rust
tests' writer (crates/server/tests/ivr_support/mod.rs): RTP PT 0, 20 ms per packet.
"""
import struct
import sys

SILENCE = 0xFF


def main() -> None:
    out, speech = sys.argv[1], sys.argv[2]
    answer = sys.argv[3] if len(sys.argv) > 3 else None
    audio = bytearray([SILENCE] * 8 * 2500)
    audio += open(speech, "rb").read()
    audio += bytes([SILENCE] * 8 * 2500)
    if answer:
        audio += open(answer, "rb").read()
    audio += bytes([SILENCE] * 8 * 30_000)

    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        seq, ts, at_us = 1000, 16000, 0
        for i in range(0, len(audio), 160):
            chunk = bytes(audio[i:i + 160]).ljust(160, bytes([SILENCE]))
            rtp = struct.pack("!BBHII", 0x80, 0, seq, ts, 0x12345678) + chunk
            udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
            ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                                       bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])))
            s = sum(struct.unpack("!10H", bytes(ip)))
            s = (s & 0xFFFF) + (s >> 16)
            ip[10:12] = struct.pack("!H", ~s & 0xFFFF)
            frame = bytes(12) + b"\x08\x00" + bytes(ip) + udp
            f.write(struct.pack("<IIII", 1_700_000_000 + at_us // 1_000_000, at_us % 1_000_000, len(frame), len(frame)))
            f.write(frame)
            seq = (seq + 1) & 0xFFFF
            ts = (ts + 160) & 0xFFFFFFFF
            at_us += 20_000


if __name__ == "__main__":
    main()
