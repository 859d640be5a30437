"""The straightforward Python pipeline the reference service ran, for the batch
benchmark (scripts/bench-batch): one utterance at a time, ffmpeg cut per utterance,
OpenCV frames, mel features, tokenizer, the same TorchScript model.

The utterance spans come from gst-emotion's own output (JSONL), so both sides analyse
the same windows; the reference's Whisper pass is not counted (it would only add to
the Python side's time).

usage: python models/bench_reference_pipeline.py --bundle DIR --results OUT_DIR CLIP...
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import audio_samples, mel_features, video_frames  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True, help="gst-emotion analyze --out folder")
    ap.add_argument("clips", nargs="+")
    args = ap.parse_args()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(args.bundle / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(length=128, pad_id=0, pad_token="[PAD]")
    model = torch.jit.load(str(args.bundle / "model.ts"), map_location="cpu").eval()
    summary = json.loads((args.results / "summary.json").read_text())
    outputs = {Path(f["input"]).name: f["output"] for f in summary["files"] if f["status"] == "ok"}
    started = time.perf_counter()
    forward = 0.0
    utterances = 0
    for clip in args.clips:
        records = [json.loads(line) for line in open(args.results / f"{outputs[Path(clip).name]}.jsonl")]
        for r in records:
            with tempfile.TemporaryDirectory() as tmp:
                cut = str(Path(tmp, "utterance.mp4"))
                subprocess.run(
                    ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", clip, "-ss", str(r["start"]),
                     "-to", str(r["end"]), "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", cut],
                    check=True,
                )
                frames = video_frames(cut, 0.0)
                audio = mel_features(audio_samples(cut, 0.0, None))
                enc = tok.encode(r.get("transcript") or "")
                ids = torch.tensor([enc.ids], dtype=torch.long)
                mask = torch.tensor([enc.attention_mask], dtype=torch.long)
                t = time.perf_counter()
                with torch.no_grad():
                    out = model(ids, mask, torch.from_numpy(frames)[None], torch.from_numpy(audio)[None])
                    torch.softmax(out["emotions"], dim=1)
                forward += time.perf_counter() - t
                utterances += 1
    wall = time.perf_counter() - started
    print(json.dumps({"wall_seconds": wall, "forward_seconds": forward, "utterances": utterances}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
