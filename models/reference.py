"""The reference MELD preprocessing, as REFERENCE-MODEL.md states it, written
independently of gst-emotion's Rust code: for one clip (or a [start, end) span of it)
and a transcript, computes the model inputs and the model's outputs and saves them to
an .npz file.

- video: OpenCV decode (BGR), the FIRST 30 frames, cv2.resize to 224x224
  (INTER_LINEAR), /255, zero-frame padding -> [30, 3, 224, 224];
- audio: ffmpeg to mono 16 kHz pcm_s16le, /32768; mel spectrogram with librosa
  (htk=True, norm=None, center=True, pad_mode="reflect", power=2.0, periodic Hann:
  the semantics of torchaudio's MelSpectrogram defaults, as PyPI has no torchaudio for
  torch 2.13); (mel - mean) / std (unbiased) over the clip; pad/truncate to 300 frames
  -> [1, 64, 300];
- text: transformers' pure-Python BertTokenizer on the bundle's vocabulary
  (lower-casing, accent stripping, WordPiece), max_length 128, padding to max_length,
  truncation -> input_ids, attention_mask (int64).

usage: python models/reference.py --bundle DIR --video clip.mp4 --text "..." \
           [--start S --end E] --out ref.npz
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import librosa
import numpy as np
import torch

FRAMES, SIZE, MELS, MEL_FRAMES, MAX_TOKENS = 30, 224, 64, 300, 128


def video_frames(path: str, start: float) -> np.ndarray:
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"{path}: OpenCV cannot open the video")
    if start > 0:
        cap.set(cv2.CAP_PROP_POS_MSEC, start * 1000.0)
    frames = []
    try:
        while len(frames) < FRAMES:
            ok, frame = cap.read()
            if not ok:
                break
            frame = cv2.resize(frame, (SIZE, SIZE))
            frames.append(frame.astype(np.float32) / 255.0)
    finally:
        cap.release()
    while len(frames) < FRAMES:
        frames.append(np.zeros((SIZE, SIZE, 3), dtype=np.float32))
    # [T, H, W, C] (BGR) -> [T, C, H, W]
    return np.stack(frames).transpose(0, 3, 1, 2).copy()


def audio_samples(path: str, start: float, end: float | None) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp, "audio.raw")
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", path]
        if start > 0:
            cmd += ["-ss", str(start)]
        if end is not None:
            cmd += ["-to", str(end)]
        cmd += ["-vn", "-acodec", "pcm_s16le", "-ar", "16000", "-ac", "1", "-f", "s16le", str(wav)]
        subprocess.run(cmd, check=True)
        return np.fromfile(wav, dtype="<i2").astype(np.float32) / 32768.0


def mel_features(samples: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=samples,
        sr=16000,
        n_fft=1024,
        hop_length=512,
        win_length=1024,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=MELS,
        fmin=0.0,
        fmax=8000.0,
        htk=True,
        norm=None,
    ).astype(np.float32)
    mel = (mel - mel.mean()) / mel.std(ddof=1)
    if mel.shape[1] < MEL_FRAMES:
        mel = np.pad(mel, ((0, 0), (0, MEL_FRAMES - mel.shape[1])))
    else:
        mel = mel[:, :MEL_FRAMES]
    return mel[None].astype(np.float32)


def tokens(bundle: Path, text: str):
    from transformers import BertTokenizer

    vocab = json.loads((bundle / "tokenizer.json").read_text())["model"]["vocab"]
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp, "vocab.txt")
        vocab_file.write_text("\n".join(t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])) + "\n")
        tok = BertTokenizer(str(vocab_file), do_lower_case=True)
        enc = tok(text, padding="max_length", truncation=True, max_length=MAX_TOKENS, return_tensors="np")
    return enc["input_ids"].astype(np.int64)[0], enc["attention_mask"].astype(np.int64)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True, type=Path, help="bundle folder (model.ts, tokenizer.json)")
    ap.add_argument("--video", required=True)
    ap.add_argument("--text", default="")
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--end", type=float)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    frames = video_frames(args.video, args.start)
    audio = mel_features(audio_samples(args.video, args.start, args.end))
    ids, mask = tokens(args.bundle, args.text)
    model = torch.jit.load(str(args.bundle / "model.ts"), map_location="cpu").eval()
    with torch.no_grad():
        out = model(
            torch.from_numpy(ids)[None],
            torch.from_numpy(mask)[None],
            torch.from_numpy(frames)[None],
            torch.from_numpy(audio)[None],
        )
    result = {
        "input_ids": ids,
        "attention_mask": mask,
        "video_frames": frames,
        "audio_features": audio,
    }
    for head in ("emotions", "sentiments"):
        logits = out[head][0]
        result[f"{head}_logits"] = logits.numpy()
        result[f"{head}_probs"] = torch.softmax(logits, dim=0).numpy()
    np.savez(args.out, **result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
