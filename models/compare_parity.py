"""Compares what gst-emotion fed the MELD model (emotionsense dump-dir .npy files of
one window) with the reference pipeline's .npz (models/reference.py), prints the
measured differences, and exits 1 when a bound of docs/parity.md is exceeded.

usage: python models/compare_parity.py ref.npz DUMP_DIR [--window 0]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

HEADS = {"emotions": "emotion", "sentiments": "sentiment"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", type=Path)
    ap.add_argument("dump", type=Path)
    ap.add_argument("--window", type=int, default=0)
    args = ap.parse_args()
    ref = np.load(args.reference)
    ours = lambda name: np.load(args.dump / f"w{args.window:06d}_{name}.npy")  # noqa: E731
    failures = []

    # A bundle with padding = "longest" feeds the real tokens only: they must equal the
    # reference's, and the reference's remainder must be padding.
    ids, mask = ours("input_ids"), ours("attention_mask")
    n = ids.shape[-1]
    ids_equal = (
        np.array_equal(ref["input_ids"][..., :n], ids)
        and np.array_equal(ref["attention_mask"][..., :n], mask)
        and not ref["attention_mask"][..., n:].any()
    )
    print(f"tokens: identical={ids_equal} ({int(ref['attention_mask'].sum())} real tokens, {n} fed)")
    if not ids_equal:
        failures.append("token ids differ")

    mel = np.abs(ref["audio_features"] - ours("audio_features"))
    print(f"mel: shape {ours('audio_features').shape} max abs diff {mel.max():.3g} mean {mel.mean():.3g}")
    if mel.max() > 1e-3:
        failures.append(f"mel max diff {mel.max():.3g} > 1e-3")

    fr = np.abs(ref["video_frames"] - ours("video_frames"))
    print(
        f"frames: shape {ours('video_frames').shape} max abs diff {fr.max() * 255:.2f}/255 "
        f"mean {fr.mean() * 255:.4f}/255 identical {np.mean(fr == 0) * 100:.2f}%"
    )
    if fr.mean() > 1 / 255 or fr.max() > 4 / 255 + 1e-6:
        failures.append("frames differ beyond mean 1/255 or max 4/255")

    for key, head in HEADS.items():
        r, o = ref[f"{key}_probs"], ours(f"{head}.probs")
        d = np.abs(r - o).max()
        same = int(np.argmax(r)) == int(np.argmax(o))
        print(f"{head}: probs max abs diff {d:.3g}, same argmax {same} (reference {r.round(4).tolist()})")
        if d > 0.01 or not same:
            failures.append(f"{head} probabilities differ ({d:.3g}, same argmax {same})")

    for f in failures:
        print(f"FAIL: {f}")
    print("parity ok" if not failures else "parity FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
