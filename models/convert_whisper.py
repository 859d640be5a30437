"""Converts a Whisper model in CTranslate2 format (as shipped by PyPI packages) to a
whisper.cpp ggml model, optionally quantised to q8_0. numpy + librosa only.

    python models/convert_whisper.py --ct2 DIR --out ggml-tiny.en-q8_0.bin --type q8_0
    python models/convert_whisper.py --ct2 DIR --model-bin part1 part2 --out ... (split model.bin)

DIR holds model.bin (or give its parts with --model-bin, concatenated in order) and
vocabulary.txt. The output is deterministic: the same input gives the same bytes.
Formats the converter cannot handle (other CTranslate2 versions or specs, quantised
CTranslate2 weights) are refused with a message saying what was found.
"""

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
GGML_TYPE = {"f32": 0, "f16": 1, "q8_0": 8}
FTYPE = {"f16": 1, "q8_0": 2000 + 7}  # q8_0: GGML_QNT_VERSION 2 * 1000 + GGML_FTYPE_MOSTLY_Q8_0
QK8_0 = 32


class Reader:
    def __init__(self, data: bytes):
        self.b, self.o = data, 0

    def u32(self) -> int:
        (v,) = struct.unpack_from("<I", self.b, self.o)
        self.o += 4
        return v

    def u16(self) -> int:
        (v,) = struct.unpack_from("<H", self.b, self.o)
        self.o += 2
        return v

    def u8(self) -> int:
        v = self.b[self.o]
        self.o += 1
        return v

    def string(self) -> str:
        n = self.u16()
        s = self.b[self.o : self.o + n - 1].decode()
        self.o += n
        return s

    def raw(self, n: int) -> bytes:
        v = self.b[self.o : self.o + n]
        self.o += n
        return v


def read_ct2(data: bytes) -> dict:
    r = Reader(data)
    version = r.u32()
    if version != 6:
        raise SystemExit(f"model.bin: CTranslate2 format version {version}; this converter reads version 6")
    spec = r.string()
    if spec != "WhisperSpec":
        raise SystemExit(f"model.bin: spec {spec!r}; this converter reads WhisperSpec")
    revision = r.u32()
    if revision != 3:
        raise SystemExit(f"model.bin: WhisperSpec revision {revision}; this converter reads revision 3")
    variables = {}
    for _ in range(r.u32()):
        name = r.string()
        dims = [r.u32() for _ in range(r.u8())]
        dtype = r.u8()
        nbytes = r.u32()
        if dtype not in DTYPES:
            raise SystemExit(f"model.bin: {name} has dtype code {dtype} (bfloat16?), not supported")
        arr = np.frombuffer(r.raw(nbytes), dtype=DTYPES[dtype]).reshape(dims)
        variables[name] = arr
    for _ in range(r.u32()):
        alias, target = r.string(), r.string()
        variables[alias] = variables[target]
    if r.o != len(data):
        raise SystemExit(f"model.bin: {len(data) - r.o} trailing bytes: truncated or not a CTranslate2 model")
    quantised = [n for n, v in variables.items() if n.endswith("weight") and v.dtype == np.int8]
    if quantised:
        raise SystemExit(f"model.bin: int8-quantised CTranslate2 weights ({quantised[0]}, ...) are not supported")
    return variables


def bytes_decoder() -> dict:
    """Inverse of GPT-2's bytes_to_unicode: printable character -> byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def whisper_tensors(v: dict) -> dict:
    """CTranslate2 variable names -> whisper.cpp tensor names (float32 arrays)."""
    t = {}
    f = lambda name: np.asarray(v[name], dtype=np.float32)  # noqa: E731

    def attn(prefix_ct2: str, prefix: str, fused_qkv: bool):
        w, b = f(prefix_ct2 + "/linear_0/weight"), f(prefix_ct2 + "/linear_0/bias")
        if fused_qkv:
            qw, kw, vw = np.split(w, 3)
            qb, _kb, vb = np.split(b, 3)  # CTranslate2 stores a zero key bias; whisper has none
            t[prefix + ".query.weight"], t[prefix + ".query.bias"] = qw, qb
            t[prefix + ".key.weight"] = kw
            t[prefix + ".value.weight"], t[prefix + ".value.bias"] = vw, vb
            out = "/linear_1"
        else:
            t[prefix + ".query.weight"], t[prefix + ".query.bias"] = w, b
            kw, vw = np.split(f(prefix_ct2 + "/linear_1/weight"), 2)
            _kb, vb = np.split(f(prefix_ct2 + "/linear_1/bias"), 2)
            t[prefix + ".key.weight"] = kw
            t[prefix + ".value.weight"], t[prefix + ".value.bias"] = vw, vb
            out = "/linear_2"
        t[prefix + ".out.weight"] = f(prefix_ct2 + out + "/weight")
        t[prefix + ".out.bias"] = f(prefix_ct2 + out + "/bias")

    def norm(ct2: str, name: str):
        t[name + ".weight"], t[name + ".bias"] = f(ct2 + "/gamma"), f(ct2 + "/beta")

    def mlp(ct2: str, name: str):
        norm(ct2 + "/layer_norm", name + "_ln")
        for i, j in ((0, 0), (1, 2)):
            t[f"{name}.{j}.weight"] = f(f"{ct2}/linear_{i}/weight")
            t[f"{name}.{j}.bias"] = f(f"{ct2}/linear_{i}/bias")

    def layers(side: str) -> int:
        return sum(1 for n in v if n.startswith(f"{side}/layer_") and n.endswith("self_attention/layer_norm/gamma"))

    t["encoder.positional_embedding"] = f("encoder/position_encodings/encodings")
    for c in ("conv1", "conv2"):
        t[f"encoder.{c}.weight"] = f(f"encoder/{c}/weight")
        t[f"encoder.{c}.bias"] = f(f"encoder/{c}/bias").reshape(-1, 1)
    n_audio_layer = layers("encoder")
    for i in range(n_audio_layer):
        p, q = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        norm(p + "/self_attention/layer_norm", q + ".attn_ln")
        attn(p + "/self_attention", q + ".attn", True)
        mlp(p + "/ffn", q + ".mlp")
    norm("encoder/layer_norm", "encoder.ln_post")

    t["decoder.positional_embedding"] = f("decoder/position_encodings/encodings")
    t["decoder.token_embedding.weight"] = f("decoder/embeddings/weight")
    n_text_layer = layers("decoder")
    for i in range(n_text_layer):
        p, q = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        norm(p + "/self_attention/layer_norm", q + ".attn_ln")
        attn(p + "/self_attention", q + ".attn", True)
        norm(p + "/attention/layer_norm", q + ".cross_attn_ln")
        attn(p + "/attention", q + ".cross_attn", False)
        mlp(p + "/ffn", q + ".mlp")
    norm("decoder/layer_norm", "decoder.ln")
    return t, n_audio_layer, n_text_layer


def quantize_q8_0(x: np.ndarray) -> bytes:
    """ggml's quantize_row_q8_0_ref, row by row: blocks of 32 as (f16 scale, 32 int8)."""
    rows = x.astype(np.float32).reshape(-1, QK8_0)
    amax = np.abs(rows).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    scaled = rows * inv[:, None]
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))).astype(np.int8)  # roundf
    blocks = np.empty(rows.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q
    return blocks.tobytes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ct2", required=True, type=Path, help="folder with model.bin and vocabulary.txt")
    ap.add_argument("--model-bin", nargs="+", type=Path, help="model.bin, or its parts in order")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--type", choices=["f16", "q8_0"], default="q8_0")
    args = ap.parse_args()

    parts = args.model_bin or [args.ct2 / "model.bin"]
    data = b"".join(p.read_bytes() for p in parts)
    v = read_ct2(data)
    tensors, n_audio_layer, n_text_layer = whisper_tensors(v)

    import librosa

    filters = librosa.filters.mel(sr=16000, n_fft=400, n_mels=v["encoder/conv1/weight"].shape[1]).astype(np.float32)

    vocab_lines = (args.ct2 / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    if vocab_lines and vocab_lines[-1] == "":
        vocab_lines.pop()
    eot = vocab_lines.index("<|endoftext|>")
    dec = bytes_decoder()
    tokens = [bytes(dec[c] for c in line) for line in vocab_lines[:eot]]

    n_vocab, n_text_state = v["decoder/embeddings/weight"].shape
    hparams = [
        n_vocab,
        v["encoder/position_encodings/encodings"].shape[0],
        v["encoder/position_encodings/encodings"].shape[1],
        int(v["encoder/num_heads"]),
        n_audio_layer,
        v["decoder/position_encodings/encodings"].shape[0],
        n_text_state,
        int(v["decoder/num_heads"]),
        n_text_layer,
        v["encoder/conv1/weight"].shape[1],
        FTYPE[args.type],
    ]
    out = bytearray()
    out += struct.pack("<i", 0x67676D6C)
    out += struct.pack("<11i", *hparams)
    out += struct.pack("<ii", *filters.shape) + filters.tobytes()
    out += struct.pack("<i", len(tokens))
    for tok in tokens:
        out += struct.pack("<i", len(tok)) + tok
    f32_names = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding"}
    for name, arr in tensors.items():
        if arr.ndim < 2 or name in f32_names:
            kind, payload = "f32", arr.astype("<f4").tobytes()
        elif args.type == "q8_0" and arr.ndim == 2 and arr.shape[1] % QK8_0 == 0:
            kind, payload = "q8_0", quantize_q8_0(arr)
        else:
            kind, payload = "f16", arr.astype("<f2").tobytes()
        encoded = name.encode()
        out += struct.pack("<iii", arr.ndim, len(encoded), GGML_TYPE[kind])
        out += struct.pack(f"<{arr.ndim}i", *reversed(arr.shape))
        out += encoded + payload
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_bytes(bytes(out))
    tmp.replace(args.out)
    print(f"wrote {args.out} ({len(out) / 1e6:.1f} MB, {args.type}, n_vocab {n_vocab}, {len(tensors)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
