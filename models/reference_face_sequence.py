"""The robot CLI's face-sequence pipeline in Python, written from the bundle's
description, as the reference the element is compared with (docs/robot.md):

    reference_face_sequence.py CLIP BUNDLE --out ref.npz [--checkpoint model.pth --arch light]
                               [--csv predictions.csv] [--debug DIR]

ffmpeg decodes every frame (rgb24); frames are scaled to the bundle's detect_size
(longest side, aspect kept, cv2 INTER_LINEAR); per sliding window of the bundle's
length and hop, T frames are picked uniformly (the frame on screen at the centre of
each of T equal slices); facenet-pytorch's detect_face (with the bundle's MTCNN files)
finds the faces; boxes are linked into tracks by overlap; each track's face is cropped
(square box + margin, black outside the frame), resized with cv2.resize, filled on
frames where it is missing (repeat / black / skip), normalised, laid out as the
bundle says and run through the model: the bundle's TorchScript, or the checkpoint in
the Python module (--checkpoint, the parity case). One answer per frame.

ref.npz holds per window k: w{k}_crops [F, T, H, W, 3] uint8, w{k}_tensor (the model
input, [F, ...]), w{k}_probs [F, T, labels], w{k}_boxes [F, 4] (mean box, fractions).
--csv writes the robot CLI's per-frame CSV; --debug the CLI's dump (sampled frames,
logits.npy, probs.npy, summary.txt).
"""

import argparse
import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_parts import package  # noqa: E402

SECOND = 1_000_000_000


def probe(path: str):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,r_frame_rate", "-of", "json", path],
        check=True, capture_output=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    num, den = (int(v) for v in s["r_frame_rate"].split("/"))
    return s["width"], s["height"], num, den


def decode(path: str):
    """Every frame as RGB uint8 [H, W, 3] with its time in ns (constant frame rate)."""
    w, h, num, den = probe(path)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    n = len(raw) // (w * h * 3)
    frames = np.frombuffer(raw, np.uint8)[: n * w * h * 3].reshape(n, h, w, 3)
    times = [i * SECOND * den // num for i in range(n)]
    return frames, times


def fit(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if max(w, h) <= side:
        return img
    s = side / max(w, h)
    size = (max(1, int(np.floor(w * s + 0.5))), max(1, int(np.floor(h * s + 0.5))))
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)


def uniform(times, start: int, end: int, count: int):
    """Indices of the frames shown at the centres of `count` slices of [start, end)."""
    cand = [i for i, t in enumerate(times) if t <= start][-1:] + [i for i, t in enumerate(times) if start < t < end]
    if not cand:
        return []
    picked = []
    for k in range(count):
        centre = start + (2 * k + 1) * (end - start) // (2 * count)
        before = [i for i in cand if times[i] <= centre]
        picked.append(before[-1] if before else cand[0])
    return picked


def rnd(v: float) -> int:
    """Rounding half away from zero, as Rust's f32::round."""
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


def iou(a, b) -> float:
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    area = lambda r: max(r[2] - r[0], 0.0) * max(r[3] - r[1], 0.0)  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def link(per_frame, min_iou=0.3):
    """Boxes per frame -> tracks [(frame, box)], most prominent first."""
    tracks = []
    area = lambda r: max(r[2] - r[0], 0.0) * max(r[3] - r[1], 0.0)  # noqa: E731
    for f, boxes in enumerate(per_frame):
        taken = [False] * len(tracks)
        for b in sorted(boxes, key=lambda b: -area(b)):
            best, best_iou = None, -1.0
            for t, tr in enumerate(tracks):
                if taken[t]:
                    continue
                v = iou(tr[-1][1], b)
                if v >= min_iou and v > best_iou:
                    best, best_iou = t, v
            if best is None:
                tracks.append([(f, b)])
                taken.append(True)
            else:
                taken[best] = True
                tracks[best].append((f, b))
    prominence = lambda tr: len(tr) * (sum(area(b) for _, b in tr) / len(tr))  # noqa: E731
    return sorted(tracks, key=lambda tr: -prominence(tr))


def crop(img: np.ndarray, box, margin: float, w: int, h: int) -> np.ndarray:
    x, y = rnd(box[0]), rnd(box[1])
    bw, bh = max(rnd(box[2] - box[0]), 1), max(rnd(box[3] - box[1]), 1)
    if bh > bw:
        x -= (bh - bw) // 2
        bw = bh
    elif bw > bh:
        y -= (bw - bh) // 2
        bh = bw
    m = rnd(margin * bw)
    x1, y1, x2, y2 = x - m, y - m, x + bw + m, y + bh + m
    region = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
    ih, iw = img.shape[:2]
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, iw), min(y2, ih)
    if sx1 < sx2 and sy1 < sy2:
        region[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = img[sy1:sy2, sx1:sx2]
    return cv2.resize(region, (w, h), interpolation=cv2.INTER_LINEAR)


def tensor(crops: np.ndarray, v: dict) -> np.ndarray:
    """[T, H, W, 3] uint8 RGB crops -> the model input of one sequence."""
    order = v["channel_order"]
    if order == "gray":
        x = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops])[..., None]
    elif order == "bgr":
        x = crops[..., ::-1]
    else:
        x = crops
    layout = {"THWC": (0, 1, 2, 3), "TCHW": (0, 3, 1, 2), "CTHW": (3, 0, 1, 2)}[v["layout"]]
    if v.get("dtype", "float32") == "uint8":
        return np.ascontiguousarray(x.transpose(layout))
    mean = np.array(v.get("mean", [0.0] * x.shape[-1]), np.float32)
    std = np.array(v.get("std", [1.0] * x.shape[-1]), np.float32)
    x = (x.astype(np.float32) * np.float32(v["scale"]) - mean) / std
    return np.ascontiguousarray(x.transpose(layout))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", help="run this state_dict in the Python module instead of model.ts")
    ap.add_argument("--arch", help="the checkpoint's shape (models/face_sequence_model.py)")
    ap.add_argument("--csv", type=Path, help="per-frame predictions, the robot CLI's CSV")
    ap.add_argument("--debug", type=Path, help="dump sampled frames, logits.npy, probs.npy, summary.txt")
    args = ap.parse_args()

    m = tomllib.loads((args.bundle / "bundle.toml").read_text())
    fs = m["faces"]
    v = m["inputs"][fs["input"]]
    head = m["heads"][0]
    labels = head["labels"]
    T, W, H = v["frames"], v["width"], v["height"]
    win = m.get("window", {})
    length, hop = int(win.get("length", 1.0) * SECOND), int(win.get("hop", 1.0) * SECOND)
    min_length = int(win.get("min_length", 0.0) * SECOND)
    margin, fill = fs.get("margin", 0.1), fs.get("fill", "repeat")
    select, max_faces = fs.get("face_select", "largest"), fs.get("max_faces", 8)

    if args.checkpoint:
        from face_sequence_model import build, load_state

        if not args.arch:
            raise SystemExit("--checkpoint needs --arch")
        model = load_state(build(args.arch, len(labels)), args.checkpoint).eval()
    else:
        model = torch.jit.load(str(args.bundle / "model.ts")).eval()
    root = package("facenet-pytorch==2.6.0")
    sys.path.insert(0, str(root / "facenet_pytorch" / "models" / "utils"))
    from detect_face import batched_nms_numpy, bbreg, detect_face, imresample, pad, rerec  # noqa: E402

    nets = []
    by_name = {mm["name"]: mm["file"] for mm in m["models"]}
    for name in fs["detector"]:
        nets.append(torch.jit.load(str(args.bundle / by_name[name])))
    thresholds = fs.get("thresholds", [0.6, 0.7, 0.7])

    def detect(img):
        with torch.no_grad():
            b, _ = detect_face(img, fs.get("min_face", 32.0), *nets, thresholds,
                               fs.get("pyramid_factor", 0.709), "cpu")
        return [list(map(float, r[:5])) for r in b[0]] if b[0] is not None and len(b[0]) else []

    def track(img, held):
        """O-Net on each held box of the frame before (squared), as MTCNN's last stage."""
        if not held:
            return []
        h, w = img.shape[:2]
        imgs = torch.as_tensor(img[None].copy()).permute(0, 3, 1, 2).float()
        boxes = rerec(torch.tensor([b[:5] for b in held], dtype=torch.float32))
        y, ey, x, ex = pad(boxes, w, h)
        crops, keep = [], []
        for k in range(len(y)):
            if ey[k] > (y[k] - 1) and ex[k] > (x[k] - 1):
                crops.append(imresample(imgs[:, :, (y[k] - 1):ey[k], (x[k] - 1):ex[k]], (48, 48)))
                keep.append(k)
        if not crops:
            return []
        boxes = boxes[keep]
        with torch.no_grad():
            out = nets[2]((torch.cat(crops, dim=0) - 127.5) * 0.0078125)
        reg, score = out[0].permute(1, 0), out[2].permute(1, 0)[1, :]
        ok = score > thresholds[2]
        boxes = torch.cat((boxes[ok, :4], score[ok].unsqueeze(1)), dim=1)
        boxes = bbreg(boxes, reg[:, ok].permute(1, 0))
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes)), 0.7, "Min")
        return [list(map(float, r)) for r in boxes[pick].numpy()]

    frames, times = decode(args.clip)
    duration = times[-1] + (times[1] - times[0] if len(times) > 1 else SECOND // 30)
    frames = [fit(f, v.get("detect_size", 640)) for f in frames]
    fh, fw = frames[0].shape[:2]
    out, rows = {}, []
    k = 0
    while k * hop < duration:
        start, end = k * hop, min(k * hop + length, duration)
        if end - start < max(min_length, 1):
            break
        picked = uniform(times, start, end, T)
        # Runs of frames: a full detection on every `detect_every`-th sampled frame;
        # the frames between (and a frame sampled twice) hold its boxes or, with
        # between = "near", follow the boxes of the frame before by O-Net.
        every, between = fs.get("detect_every", 1), fs.get("between", "hold")
        runs = []
        for t, i in enumerate(picked):
            if runs and (t % every != 0 or runs[-1][0][1] == i):
                runs[-1].append((t, i))
            else:
                runs.append([(t, i)])
        boxes = [[] for _ in picked]
        for run in runs:
            held = detect(frames[run[0][1]])
            boxes[run[0][0]] = held
            for (_, pi), (t, i) in zip(run, run[1:]):
                if between == "near" and pi != i:
                    held = track(frames[i], held)
                boxes[t] = held
        boxes += [[] for _ in range(T - len(picked))]
        seqs = []
        for tr in link(boxes)[:max_faces]:
            on = {f: b for f, b in tr}
            if fill == "skip" and len(on) < T:
                continue
            crops = []
            for f in range(T):
                if f in on:
                    crops.append(crop(frames[picked[f]], on[f], margin, W, H))
                elif fill == "black":
                    crops.append(np.zeros((H, W, 3), np.uint8))
                else:
                    near = min(on, key=lambda j: (abs(j - f), j))
                    crops.append(crop(frames[picked[near]], on[near], margin, W, H))
            n = len(tr)
            mean = [sum(b[i] for _, b in tr) / n for i in range(4)]
            rect = [mean[0] / fw, mean[1] / fh, (mean[2] - mean[0]) / fw, (mean[3] - mean[1]) / fh]
            seqs.append((np.stack(crops), rect))
        if select == "largest":
            seqs.sort(key=lambda s: -(s[1][2] * s[1][3]))
        elif select == "center":
            seqs.sort(key=lambda s: np.hypot(s[1][0] + s[1][2] / 2 - 0.5, s[1][1] + s[1][3] / 2 - 0.5))
        times_k = [times[i] for i in picked] + [None] * (T - len(picked))
        if seqs:
            x = np.stack([tensor(c, v) for c, _ in seqs])
            with torch.no_grad():
                logits = model(torch.from_numpy(x)).float().numpy()
            probs = softmax(logits)
            out[f"w{k}_crops"] = np.stack([c for c, _ in seqs])
            out[f"w{k}_tensor"] = x
            out[f"w{k}_logits"] = logits
            out[f"w{k}_probs"] = probs
            out[f"w{k}_boxes"] = np.array([r for _, r in seqs])
            for fi in range(len(seqs)):
                for t in range(T):
                    p = probs[fi, t]
                    rows.append([times_k[t] / SECOND if times_k[t] is not None else "", t, fi,
                                 labels[int(p.argmax())], float(p.max())] + [float(q) for q in p])
            if args.debug:
                d = args.debug / f"w{k:06}"
                d.mkdir(parents=True, exist_ok=True)
                for t, i in enumerate(picked):
                    cv2.imwrite(str(d / f"frame{t:03}.png"), frames[i][..., ::-1])
                np.save(d / "logits.npy", logits)
                np.save(d / "probs.npy", probs)
                (d / "summary.txt").write_text(
                    f"window {k}: {start / SECOND:.3f}-{end / SECOND:.3f} s, {len(seqs)} face(s)\n"
                    + "".join(f"face {fi}: {labels[int(probs[fi].mean(0).argmax())]}\n" for fi in range(len(seqs))))
        out[f"w{k}_faces"] = np.array(len(seqs))
        k += 1
    out["windows"] = np.array(k)
    np.savez(args.out, **out)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "frame_index", "face_id", "label", "confidence"] + labels)
            w.writerows(rows)
    print(f"{args.out}: {k} windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
