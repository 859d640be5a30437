"""Exports a face-sequence emotion model (a CNN + LSTM over T face crops, one answer
per frame) to a gst-emotion bundle.

    python models/export_face_sequence.py --arch light --checkpoint model.pth --out bundles/robot
    python models/export_face_sequence.py --arch large --random-init --seed 1 --out /tmp/large

Writes DIR/model.ts (TorchScript: scripted, or traced when the model cannot be
scripted), DIR/bundle.toml (face crops from MTCNN tracks, T frames sampled uniformly
per window, the arch's layout and normalisation, a per-frame emotion head),
DIR/mtcnn_{pnet,rnet,onet}.ts (copied from the default bundle, `--detector`) and
DIR/MODEL_CARD.md. The checkpoint and its TorchScript export are compared on a few
random inputs before anything is written; a difference above 1e-5 is an error.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from face_sequence_model import ARCHS, LABELS, build, load_state  # noqa: E402
from ts_device import make_device_independent  # noqa: E402

MANIFEST = """\
# gst-emotion bundle: a face-sequence emotion model ({arch}), made by
# models/export_face_sequence.py. See MODEL_CARD.md.
format = 1
name = "{name}"
description = "CNN+LSTM over {frames} face crops ({arch}), one emotion per frame"
model_card = "MODEL_CARD.md"

[[models]]
name = "pnet"
file = "mtcnn_pnet.ts"

[[models]]
name = "rnet"
file = "mtcnn_rnet.ts"

[[models]]
name = "onet"
file = "mtcnn_onet.ts"

[[models]]
name = "model"
file = "model.ts"
forward = ["frames"]

# Each tracked face's {frames} crops, sampled uniformly across the window.
[inputs.frames]
kind = "video"
crop = "face"
frames = {frames}
policy = "uniform"
detect_size = {detect_size}
width = {size}
height = {size}
channel_order = "rgb"
scale = 0.00392156862745098
mean = {mean}
std = {std}
layout = "{layout}"

[faces]
input = "frames"
detector = ["pnet", "rnet", "onet"]
min_face = {min_face}
margin = {margin}
fill = "{fill}"
face_select = "{face_select}"
max_faces = 4
detect_every = {detect_every}
between = "{between}"

[[heads]]
name = "emotion"
labels = {labels}
model = "model"
per_frame = true

[window]
length = {window}
hop = {window}
min_length = {min_length}
"""

CARD = """\
# Model card: {name}

A face-sequence emotion model for robot and room cameras, exported by
`models/export_face_sequence.py`.

| | |
|---|---|
| architecture | {arch}: {arch_text} |
| weights | {weights} |
| labels (output order) | {labels} |
| input shape | {shape} (batch, {layout_text}), float32 |
| crops | MTCNN face tracks, square box + {margin:.0%} margin, black outside the frame, bilinear resize to {size}x{size}, RGB |
| normalisation | {normalisation} |
| frames | T = {frames} per window of {window} s, sampled uniformly; a face missing on some frames: `{fill}` |
| output | logits [batch, T, {classes}]: one answer per frame (`per_frame = true`); the window's answer is the mean of the frames' probabilities |
| parameters | {params:,} |
| expected runtime | {runtime:.1f} ms per face sequence on this machine's CPU ({threads} threads, batch 1, measured at export) |
| accuracy | {accuracy} |
| export | TorchScript by {mode}; checkpoint vs TorchScript max abs difference {parity:.2e} on {checks} random inputs |

Use it with `emotionsense bundle=DIR` or `gst-emotion analyze --bundle DIR --per-frame`
(docs/robot.md).
"""


def default_detector() -> Path:
    import os

    cache = Path(os.environ.get("GST_EMOTION_CACHE", Path.home() / ".cache" / "gst-emotion"))
    return cache / "bundles" / "default-v2"


def export(model: torch.nn.Module, example: torch.Tensor, mode: str):
    """TorchScript of `model`: scripted when possible (mode auto|script), else traced."""
    if mode in ("auto", "script"):
        try:
            return torch.jit.script(model), "scripting"
        except Exception as e:  # noqa: BLE001 - any scripting failure falls back
            if mode == "script":
                raise SystemExit(f"torch.jit.script failed: {e}")
            print(f"scripting failed ({str(e).splitlines()[0]}); tracing", file=sys.stderr)
    return torch.jit.trace(model, example, check_trace=False), "tracing"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=sorted(ARCHS), required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="state_dict (.pth) of the model")
    src.add_argument("--random-init", action="store_true", help="deterministic random weights (tests)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-checkpoint", type=Path, help="also write the weights as a state_dict (tests)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--name", default=None)
    ap.add_argument("--labels", nargs="+", default=LABELS)
    ap.add_argument("--frames", type=int, default=10, help="T, crops per sequence")
    ap.add_argument("--size", type=int, default=48, help="crop side in pixels")
    ap.add_argument("--window", type=float, default=1.0, help="window length and hop (s)")
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--min-face", type=float, default=32.0)
    ap.add_argument("--detect-size", type=int, default=640)
    ap.add_argument("--detect-every", type=int, default=5, help="full MTCNN on every Nth sampled frame")
    ap.add_argument("--between", choices=["hold", "near"], default="near",
                    help="between full detections: hold the boxes, or search near them")
    ap.add_argument("--fill", choices=["repeat", "black", "skip"], default="repeat")
    ap.add_argument("--face-select", choices=["largest", "center", "all-mean"], default="largest")
    ap.add_argument("--mode", choices=["auto", "script", "trace"], default="auto")
    ap.add_argument("--accuracy", default="not measured (give --accuracy TEXT)")
    ap.add_argument("--detector", type=Path, default=None, help="folder with mtcnn_*.ts (default bundle)")
    args = ap.parse_args()

    if args.frames < 1 or args.size < 8 or args.detect_every < 1:
        raise SystemExit("--frames and --detect-every must be >= 1, --size >= 8")
    arch = ARCHS[args.arch]
    torch.manual_seed(args.seed)
    model = build(args.arch, len(args.labels)).eval()
    if args.checkpoint:
        load_state(model, args.checkpoint)
        weights = f"checkpoint {Path(args.checkpoint).name}"
    else:
        weights = f"random (--random-init --seed {args.seed}): for tests only, predicts nothing meaningful"
    if args.save_checkpoint:
        torch.save(model.state_dict(), args.save_checkpoint)
    t, s = args.frames, args.size
    shape = (1, t, s, s, 3) if arch["layout"] == "THWC" else (1, t, 3, s, s)
    example = torch.rand(shape)
    with torch.no_grad():
        ts, mode = export(model, example, args.mode)
        ts = torch.jit.freeze(ts.eval()) if mode == "scripting" else ts
        worst = 0.0
        gen = torch.Generator().manual_seed(args.seed + 1)
        checks = 4
        for b in (1, 2, 3, 1):
            x = torch.rand((b,) + shape[1:], generator=gen)
            worst = max(worst, (model(x) - ts(x)).abs().max().item())
        if worst > 1e-5:
            raise SystemExit(f"checkpoint and TorchScript differ by {worst:.3g} (> 1e-5)")
        ts(example)
        started = time.perf_counter()
        for _ in range(10):
            ts(example)
        runtime = (time.perf_counter() - started) * 100.0
    det = args.detector or default_detector()
    nets = [det / f"mtcnn_{n}.ts" for n in ("pnet", "rnet", "onet")]
    missing = [str(p) for p in nets if not p.is_file()]
    if missing:
        raise SystemExit(f"MTCNN not found: {', '.join(missing)} (build the default bundle: scripts/setup, or give --detector)")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for p in nets:
        shutil.copyfile(p, out / p.name)
    if mode == "tracing":
        ts = make_device_independent(ts)  # tensors the forward makes: on the input's device
    ts.save(str(out / "model.ts"))
    name = args.name or f"face-sequence-{args.arch}"
    fmt = lambda v: "[" + ", ".join(repr(x) if isinstance(x, str) else f"{x}" for x in v) + "]"  # noqa: E731
    labels = "[" + ", ".join(f'"{l}"' for l in args.labels) + "]"
    (out / "bundle.toml").write_text(MANIFEST.format(
        arch=args.arch, name=name, frames=t, size=s, detect_size=args.detect_size,
        mean=fmt(arch["mean"]), std=fmt(arch["std"]), layout=arch["layout"],
        min_face=args.min_face, margin=args.margin, detect_every=args.detect_every, between=args.between, fill=args.fill, face_select=args.face_select,
        labels=labels, window=args.window, min_length=round(args.window * 0.3, 3),
    ))
    layout_text = "T, H, W, C: channels last" if arch["layout"] == "THWC" else "T, C, H, W: channels first"
    (out / "MODEL_CARD.md").write_text(CARD.format(
        name=name, arch=args.arch, arch_text=model.__class__.__doc__.strip(), weights=weights,
        labels=", ".join(args.labels), shape=list(shape[:1]) and f"[B, {', '.join(str(d) for d in shape[1:])}]",
        layout_text=layout_text, margin=args.margin, size=s, normalisation=arch["normalisation"],
        frames=t, window=args.window, fill=args.fill, classes=len(args.labels),
        params=sum(p.numel() for p in model.parameters()), runtime=runtime,
        threads=torch.get_num_threads(), accuracy=args.accuracy, mode=mode, parity=worst, checks=checks,
    ))
    print(f"{out}: {name} ({args.arch}, {mode}, parity {worst:.2e}, {runtime:.1f} ms per sequence)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
