"""Compares what the element fed a face-sequence model and what it answered (its
`--debug` dump) with the Python reference (reference_face_sequence.py's .npz):

    compare_face_sequence.py DUMP_DIR REF.npz [--head emotion] [--json report.json]

Per window: the number of faces, the crops (pixels, 0-255: mean and max |Δ|), the
input tensors (max |Δ|) and the per-frame probabilities (max |Δ|, argmax agreement).
Bounds (docs/robot.md): crops mean ≤ 1/255 and max ≤ 4/255, probabilities ≤ 1e-4
with the same argmax. Prints one line per window and exits 1 when a bound is broken.
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

CROP_MEAN, CROP_MAX, PROB = 1.0, 4.0, 1e-4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump", type=Path)
    ap.add_argument("ref", type=Path)
    ap.add_argument("--head", default="emotion")
    ap.add_argument("--json", type=Path, help="write the per-window figures here")
    args = ap.parse_args()
    ref = np.load(args.ref)
    failures, report = [], []
    for k in range(int(ref["windows"])):
        want = int(ref[f"w{k}_faces"])
        w = f"w{k:06}"
        tensor = args.dump / f"{w}_faces.npy"
        got = np.load(tensor).shape[0] if tensor.exists() else 0
        line = {"window": k, "faces": got, "reference_faces": want}
        if got != want:
            failures.append(f"window {k}: {got} face(s), the reference has {want}")
            report.append(line)
            continue
        if want == 0:
            report.append(line)
            continue
        crops = np.stack([
            np.stack([cv2.imread(str(args.dump / f"{w}_face{f}_crop{t:03}.png"))[..., ::-1]
                      for t in range(ref[f"w{k}_crops"].shape[1])])
            for f in range(want)]).astype(np.int16)
        d = np.abs(crops - ref[f"w{k}_crops"].astype(np.int16))
        line["crop_mean"], line["crop_max"] = float(d.mean()), int(d.max())
        line["tensor_max"] = float(np.abs(np.load(tensor).astype(np.float64) - ref[f"w{k}_tensor"]).max())
        probs = np.load(args.dump / f"{w}_faces_{args.head}.frame_probs.npy").astype(np.float64)
        rp = ref[f"w{k}_probs"].astype(np.float64)
        line["prob_max"] = float(np.abs(probs - rp).max())
        line["argmax_same"] = bool((probs.argmax(-1) == rp.argmax(-1)).all()
                                   and (probs.mean(1).argmax(-1) == rp.mean(1).argmax(-1)).all())
        if line["crop_mean"] > CROP_MEAN or line["crop_max"] > CROP_MAX:
            failures.append(f"window {k}: crops differ by mean {line['crop_mean']:.3f}, max {line['crop_max']} (of 255)")
        if line["prob_max"] > PROB or not line["argmax_same"]:
            failures.append(f"window {k}: probabilities differ by {line['prob_max']:.2e}, same argmax: {line['argmax_same']}")
        report.append(line)
    for line in report:
        print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    print("parity: " + ("FAILED" if failures else "ok") + f" ({len(report)} windows)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
