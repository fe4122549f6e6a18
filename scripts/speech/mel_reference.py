#!/usr/bin/env python3
"""Reference log-mel values for the Rust front-end test (crates/speech/tests/data/mel_reference.json).

Re-implements OpenAI whisper/audio.py `log_mel_spectrogram` with numpy only (torch.stft with a
periodic Hann window, center=True, reflect padding, last frame dropped; librosa's Slaney mel
filterbank; log10 clamp 1e-10; max-8 floor; (x+4)/4), in float64. Input: a deterministic
1 s signal at 16 kHz (440 Hz + 1250 Hz tones with a linear chirp 300->3000 Hz).
Run: python3 scripts/speech/mel_reference.py > crates/speech/tests/data/mel_reference.json
"""
import json
import numpy as np

SR, N_FFT, HOP, N_MELS = 16000, 400, 160, 80


def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters():
    fftfreqs = np.linspace(0, SR / 2, 1 + N_FFT // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SR / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((N_MELS, len(fftfreqs)))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS])
    return w * enorm[:, None]


def signal():
    t = np.arange(SR) / SR
    chirp = np.sin(2 * np.pi * (300 * t + 0.5 * 2700 * t * t))
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t) + 0.1 * chirp).astype(np.float32)


def log_mel(x):
    x = x.astype(np.float64)
    pad = N_FFT // 2
    xp = np.pad(x, (pad, pad), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    n_frames = 1 + (len(xp) - N_FFT) // HOP
    frames = np.stack([xp[i * HOP:i * HOP + N_FFT] * window for i in range(n_frames)])
    spec = np.fft.rfft(frames, axis=1)
    mag = (np.abs(spec) ** 2)[:-1].T  # drop last frame like whisper: stft[..., :-1]
    mel = mel_filters() @ mag
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


if __name__ == "__main__":
    m = log_mel(signal())
    f = mel_filters()
    frames = [0, 1, 17, 50, 99]
    mels = [0, 5, 20, 40, 60, 79]
    out = {
        "n_frames": int(m.shape[1]),
        "frames": frames,
        "mels": mels,
        "values": [[float(m[k, t]) for t in frames] for k in mels],
        "max": float(m.max()),
        "min": float(m.min()),
        "mean": float(m.mean()),
        "filters": {"rows": [0, 10, 79], "sums": [float(f[r].sum()) for r in [0, 10, 79]],
                    "argmax": [int(f[r].argmax()) for r in [0, 10, 79]],
                    "peak": [float(f[r].max()) for r in [0, 10, 79]]},
    }
    print(json.dumps(out, indent=1))
