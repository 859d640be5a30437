"""Compares gst-emotion's frame resize with OpenCV's cv2.resize(INTER_LINEAR).

Runs the `resize_raw` example binary on random BGR images of many sizes and prints,
per case, the max and mean absolute difference against cv2.resize. Exits 1 if any
pixel differs by more than --tolerance (default 0: bit-exact).

usage: python models/check_resize.py path/to/resize_raw [--tolerance N]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

CASES = [
    (320, 240, 224, 224),
    (1280, 720, 224, 224),
    (1920, 1080, 224, 224),
    (640, 360, 224, 224),
    (448, 448, 224, 224),  # exact 2x: OpenCV may switch to INTER_AREA internally
    (100, 80, 224, 224),  # upscaling
    (37, 53, 224, 224),
    (224, 224, 224, 224),
    (1920, 1080, 64, 64),
    (640, 480, 112, 112),
    (1280, 720, 640, 360),  # the face detector's frame: whole factor 2
    (1920, 1080, 640, 360),  # whole factor 3
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary", type=Path)
    ap.add_argument("--tolerance", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    worst = 0
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.raw"), Path(tmp, "out.raw")
        for w, h, ow, oh in CASES:
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            img.tofile(src)
            subprocess.run(
                [str(args.binary), str(src), str(w), str(h), str(dst), str(ow), str(oh)],
                check=True,
            )
            ours = np.fromfile(dst, dtype=np.uint8).reshape(oh, ow, 3)
            ref = cv2.resize(img, (ow, oh), interpolation=cv2.INTER_LINEAR)
            d = np.abs(ours.astype(int) - ref.astype(int))
            worst = max(worst, int(d.max()))
            print(f"{w}x{h} -> {ow}x{oh}: max {d.max()} mean {d.mean():.6f}")
    print(f"opencv {cv2.__version__}: worst difference {worst} (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
