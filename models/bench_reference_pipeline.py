"""The straightforward Python pipeline the reference service ran, for the batch
benchmark (scripts/bench-batch): one utterance at a time, ffmpeg cut per utterance,
OpenCV frames, mel features, tokenizer, the same TorchScript model.

The utterance spans come from gst-emotion's own output (JSONL), so both sides analyse
the same windows; the reference's Whisper pass is not counted (it would only add to
the Python side's time).

usage: python models/bench_reference_pipeline.py --bundle DIR --results OUT_DIR [--device D] CLIP...

--device cuda:0 runs the model there (as the seed did on a GPU). Where ffmpeg or
librosa is missing (scripts/gpu-check's GPU machine has neither), each utterance is
read without the ffmpeg cut: OpenCV from the utterance's start in the clip, audio from
the WAV beside it (CLIP with .wav), and the same mel spectrogram computed with numpy;
the first output line says which — that flow does less work than the seed's.
"""

import argparse
import json
import shutil
import subprocess
import wave
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import MEL_FRAMES, MELS, video_frames  # noqa: E402


def htk_mel_filters(sr: int = 16000, n_fft: int = 1024, n_mels: int = MELS) -> np.ndarray:
    """librosa.filters.mel(htk=True, norm=None, fmin=0, fmax=sr/2)."""
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    mel_to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    diffs = np.diff(points)
    ramps = points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / diffs[:-1, None]
    upper = ramps[2:] / diffs[1:, None]
    return np.maximum(0, np.minimum(lower, upper))


def numpy_mel_features(samples: np.ndarray) -> np.ndarray:
    """reference.mel_features without librosa: centred reflect-padded Hann STFT, power
    spectrum, HTK mel filters, per-clip normalisation, 300 frames."""
    n_fft, hop = 1024, 512
    y = np.pad(samples, n_fft // 2, mode="reflect") if len(samples) > n_fft // 2 else np.pad(samples, n_fft // 2)
    frames = 1 + (len(y) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    window = np.hanning(n_fft + 1)[:-1]
    power = np.abs(np.fft.rfft(y[idx] * window, axis=1)) ** 2
    mel = (htk_mel_filters() @ power.T).astype(np.float32)
    mel = (mel - mel.mean()) / mel.std(ddof=1)
    if mel.shape[1] < MEL_FRAMES:
        mel = np.pad(mel, ((0, 0), (0, MEL_FRAMES - mel.shape[1])))
    return mel[None, :, :MEL_FRAMES].astype(np.float32)


def wav_slice(path: Path, start: float, end: float) -> np.ndarray:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        w.setpos(min(int(start * rate), w.getnframes()))
        data = w.readframes(max(0, int((end - start) * rate)))
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True, help="gst-emotion analyze --out folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("clips", nargs="+")
    args = ap.parse_args()
    try:
        import librosa  # noqa: F401

        have_librosa = True
    except ImportError:
        have_librosa = False
    seed_flow = shutil.which("ffmpeg") is not None and have_librosa
    print(
        "flow: the seed's (ffmpeg cut per utterance, OpenCV, librosa)"
        if seed_flow
        else "flow: without the ffmpeg cut (OpenCV from the utterance start, WAV beside the clip, numpy mel)",
        flush=True,
    )
    if seed_flow:
        from reference import audio_samples, mel_features
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(args.bundle / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(length=128, pad_id=0, pad_token="[PAD]")
    device = torch.device(args.device)
    model = torch.jit.load(str(args.bundle / "model.ts"), map_location=device).eval()
    summary = json.loads((args.results / "summary.json").read_text())
    outputs = {Path(f["input"]).name: f["output"] for f in summary["files"] if f["status"] == "ok"}
    started = time.perf_counter()
    forward = 0.0
    utterances = 0
    for clip in args.clips:
        records = [json.loads(line) for line in open(args.results / f"{outputs[Path(clip).name]}.jsonl")]
        for r in records:
            if seed_flow:
                with tempfile.TemporaryDirectory() as tmp:
                    cut = str(Path(tmp, "utterance.mp4"))
                    subprocess.run(
                        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", clip, "-ss", str(r["start"]),
                         "-to", str(r["end"]), "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", cut],
                        check=True,
                    )
                    frames = video_frames(cut, 0.0)
                    audio = mel_features(audio_samples(cut, 0.0, None))
            else:
                frames = video_frames(clip, r["start"])
                audio = numpy_mel_features(wav_slice(Path(clip).with_suffix(".wav"), r["start"], r["end"]))
            enc = tok.encode(r.get("transcript") or "")
            ids = torch.tensor([enc.ids], dtype=torch.long, device=device)
            mask = torch.tensor([enc.attention_mask], dtype=torch.long, device=device)
            t = time.perf_counter()
            with torch.no_grad():
                out = model(ids, mask, torch.from_numpy(frames)[None].to(device), torch.from_numpy(audio)[None].to(device))
                torch.softmax(out["emotions"], dim=1).cpu()
            forward += time.perf_counter() - t
            utterances += 1
    wall = time.perf_counter() - started
    print(json.dumps({"wall_seconds": wall, "forward_seconds": forward, "utterances": utterances}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
