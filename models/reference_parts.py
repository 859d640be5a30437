#!/usr/bin/env python3
"""Reference answers of the original Python packages the default bundle's Rust code
re-implements, for the parity tests (tests/default_parts.rs):

  reference_parts.py vader SENTENCE...      JSON list of vaderSentiment compound scores
  reference_parts.py mtcnn BUNDLE IMAGE MIN_FACE
                                            JSON list of facenet-pytorch detect_face
                                            boxes [x1, y1, x2, y2, score] on an RGB image

The packages are fetched once (pip download --no-deps) into
$GST_EMOTION_CACHE/pypkgs/ and imported from there, not installed: facenet-pytorch pins
an old torch, and vadersentiment's own dependency (requests) is not needed here.
"""
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def package(spec: str) -> Path:
    cache = Path(os.environ.get("GST_EMOTION_CACHE", Path.home() / ".cache" / "gst-emotion"))
    dest = cache / "pypkgs" / spec.replace("==", "-")
    if not (dest / ".done").exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            "--disable-pip-version-check", spec, "-d", tmp], check=True)
            (wheel,) = Path(tmp).glob("*.whl")
            dest.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(wheel) as z:
                z.extractall(dest)
        (dest / ".done").write_text("")
    return dest


def vader(sentences):
    sys.path.insert(0, str(package("vadersentiment==3.3.2")))
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    a = SentimentIntensityAnalyzer()
    # The package rounds the compound to 4 decimals.
    return [a.polarity_scores(s)["compound"] for s in sentences]


def mtcnn(bundle: str, image: str, min_face: float):
    import cv2
    import numpy as np
    import torch

    root = package("facenet-pytorch==2.6.0")
    sys.path.insert(0, str(root / "facenet_pytorch" / "models" / "utils"))
    from detect_face import detect_face  # noqa: E402  (the module alone, not the package)

    img = cv2.imread(image, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    nets = [torch.jit.load(str(Path(bundle) / f"mtcnn_{n}.ts")) for n in ("pnet", "rnet", "onet")]
    with torch.no_grad():
        boxes, _ = detect_face(img, min_face, *nets, [0.6, 0.7, 0.7], 0.709, "cpu")
    return [[float(v) for v in b] for b in boxes[0]]


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd = sys.argv[1]
    if cmd == "vader":
        print(json.dumps(vader(sys.argv[2:])))
    elif cmd == "mtcnn":
        print(json.dumps(mtcnn(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
