"""The measurement scripts/gpu-check runs (issue 26), from an unpacked carry: exports
the bundles with this machine's torch, then measures and writes OUT/gpu-check.md
after every section (a run cut short still leaves what it measured) and every
command's output in OUT/gpu-check.log. Run it through scripts/gpu-check, which sets
the environment (the carried GStreamer only, GST_EMOTION_CACHE in the carry).

Sections: 1 `gst-emotion info`; 2 MELD forward per batch size and precision, parity
with the CPU; 3 batch analysis (`analyze --jobs N`) on the device, on the CPU cores,
and the seed's Python flow; 4 live capacity (default and MELD bundles); 5 the
face-sequence models' forward per batch size.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class GpuSampler:
    """nvidia-smi's utilisation and memory every 200 ms, when there is an nvidia-smi."""

    def __init__(self):
        self.samples = []  # (time, util %, memory MiB)
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "200"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                util, mem = (float(x) for x in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.monotonic(), util, mem))

    def between(self, t0, t1):
        """'util mean/max %, memory max MiB' over [t0, t1], or 'no nvidia-smi'."""
        s = [x for x in self.samples if t0 <= x[0] <= t1]
        if not s:
            return "no GPU readings" if self.proc else "no nvidia-smi"
        utils = [x[1] for x in s]
        return f"GPU util mean {sum(utils) / len(utils):.0f} % / max {max(utils):.0f} %, memory max {max(x[2] for x in s):.0f} MiB"

    def stop(self):
        if self.proc:
            self.proc.terminate()


class Check:
    def __init__(self, args):
        self.a = args
        self.w = Path(args.work)
        self.out = Path(args.out)
        self.quick = args.quick == "1"
        self.device = args.device
        self.on_gpu = args.device.startswith("cuda")
        self.py = args.python
        self.bin = self.w / "bin"
        self.log = open(self.out / "gpu-check.log", "w")
        self.report = []
        self.started = time.monotonic()
        self.gpu = GpuSampler()
        self.cores = os.cpu_count() or 1

    # ------------------------------------------------------------------ helpers
    def sh(self, cmd, env=None, timeout=600, check=True):
        """Runs cmd (a list), logs it and its output; returns stdout."""
        self.log.write(f"\n$ {' '.join(str(c) for c in cmd)}\n")
        self.log.flush()
        e = dict(os.environ, **(env or {}))
        t = time.monotonic()
        p = subprocess.run([str(c) for c in cmd], env=e, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        self.log.write(p.stdout[-20000:] + p.stderr[-20000:])
        self.log.write(f"[exit {p.returncode} after {time.monotonic() - t:.1f} s]\n")
        self.log.flush()
        if check and p.returncode != 0:
            raise RuntimeError(f"{Path(str(cmd[0])).name} failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-600:]}")
        return p.stdout

    def add(self, *lines):
        self.report.extend(lines)
        head = [
            f"# gst-emotion GPU check ({'quick, ' if self.quick else ''}device {self.device})",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {self.cores} CPU cores, "
            f"{time.monotonic() - self.started:.0f} s into the run.",
            "",
        ]
        (self.out / "gpu-check.md").write_text("\n".join(head + self.report) + "\n")

    def section(self, title, fn):
        t = time.monotonic()
        self.add("", f"## {title}", "")
        try:
            fn()
        except Exception as e:  # one failed section must not lose the others
            self.add(f"**FAILED**: {e}")
        self.log.write(f"[section {title}: {time.monotonic() - t:.1f} s]\n")

    # ------------------------------------------------------------------ steps
    def info(self):
        text = self.sh([self.bin / "gst-emotion", "info"])
        torch_line = self.sh([self.py, "-c", "import torch; print(torch.__version__, torch.cuda.is_available(), "
                              "torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"]).strip()
        smi = self.sh(["nvidia-smi", "-L"], check=False) if shutil.which("nvidia-smi") else "no nvidia-smi\n"
        self.add("```", text.strip(), "```", "", f"python3's torch: {torch_line}", f"nvidia-smi -L: {smi.strip()}")
        if self.on_gpu and "CUDA available: true" not in text:
            raise RuntimeError("the binary sees no CUDA device: every later figure would be the CPU's; stopping")

    def export(self):
        b = self.w / "bundles"
        half = ["bf16", "fp16"] if self.on_gpu else ["bf16"]  # fp16 on the CPU takes minutes
        t = time.monotonic()
        self.sh([self.py, "models/export_meld.py", "--random-init", "--seed", "1", "--half", *half, "--out", b / "meld"])
        t_meld = time.monotonic() - t
        for arch in ("light", "large"):
            self.sh([self.py, "models/export_face_sequence.py", "--arch", arch, "--random-init", "--seed", "1",
                     "--detector", self.w / "cache/bundles/default-v2", "--out", b / f"face-{arch}"])
        # The default bundle's sentence encoder: same architecture, random weights.
        self.sh([self.py, "-c", RANDOM_ENCODER, str(self.w / "media/minilm-config.json"),
                 str(self.w / "cache/bundles/default-v2/text_encoder.ts")])
        self.add(f"Exported with this machine's torch: MELD random-init (fp32, its CPU variant, {' and '.join(half)}; "
                 f"{t_meld:.0f} s), face sequences light and large, and the default bundle's sentence "
                 "encoder (MiniLM-L6 architecture with random weights: its 91 MB of weights do not fit "
                 "the carry; the cost per window is the same, the text predictions are not).")

    def clips(self):
        """The batch clips: the carried ones, copied to make ≥ 40 (MELD-like: one
        utterance each)."""
        src = sorted((self.w / "clips").glob("c*.mkv"))
        want = len(src) if self.quick else 64
        d = self.w / "batch"
        d.mkdir(exist_ok=True)
        self.batch_clips = []
        for k in range(want):
            s = src[k % len(src)]
            dst = d / f"clip{k:03d}.mkv"
            os.link(s, dst)
            os.link(s.with_suffix(".wav"), dst.with_suffix(".wav"))
            self.batch_clips.append(dst)
        secs = sum(_wav_seconds(c.with_suffix(".wav")) for c in self.batch_clips)
        self.add(f"{len(self.batch_clips)} clips ({len(src)} distinct), {secs:.0f} s in all, "
                 "1280x720 30 fps VP8 + 16 kHz speech (espeak-ng), one utterance each.")

    def forward(self):
        meld = self.w / "bundles/meld"
        dump = self.w / "dump"
        src = sorted((self.w / "clips").glob("c*.mkv"))[:4]
        self.sh([self.bin / "gst-emotion", "analyze", *src, "--bundle", meld, "--device", "cpu",
                 "--window-mode", "utterance", "--debug", dump, "--out", self.w / "dump-out", "--force"])
        dirs = sorted(p for p in dump.iterdir() if p.is_dir())
        batches = "1,2" if self.quick else "1,8,32"
        iters = "1" if self.quick else "5"
        rows = []
        for precision in ("fp32", "bf16", "fp16"):
            if not (meld / ("model.ts" if precision == "fp32" else f"model.{precision}.ts")).exists():
                continue
            t0 = time.monotonic()
            text = self.sh([self.bin / "bench_forward", meld, *dirs, "--device", self.device, "--precision", precision,
                            "--batches", batches, "--iterations", iters])
            gpu = self.gpu.between(t0, time.monotonic())
            ms = {int(m[1]): float(m[2]) for m in re.finditer(r"batch (\d+) ms_per_window ([\d.]+)", text)}
            par = re.search(r"windows (\d+) max_dp (\S+) same_argmax (\d+)", text)
            rows.append(f"| {precision} | " + " | ".join(f"{ms.get(int(b), float('nan')):.2f}" for b in batches.split(","))
                        + f" | {float(par[2]):.1e} | {par[3]}/{par[1]} | {gpu} |")
        self.add(f"Windows dumped by `analyze --debug` on {len(src)} clips, replayed through the MELD model "
                 f"(random weights) on {self.device}; parity: the same windows on the CPU in fp32.", "",
                 "| precision | " + " | ".join(f"ms/window at batch {b}" for b in batches.split(","))
                 + " | max abs dp vs CPU fp32 | same argmax | GPU |",
                 "|---" * (len(batches.split(",")) + 4) + "|", *rows)

    def batch(self):
        meld = self.w / "bundles/meld"
        jobs = str(min(16, self.cores))
        runs = [(self.device, "--device " + self.device)]
        if self.on_gpu:
            runs.append(("cpu", "--device cpu"))
        rows = []
        first_out = None
        for dev, _ in runs:
            out = self.w / f"batch-{dev.replace(':', '')}"
            t0 = time.monotonic()
            self.sh([self.bin / "gst-emotion", "analyze", *self.batch_clips, "--bundle", meld, "--device", dev,
                     "--jobs", jobs, "--window-mode", "utterance", "--set", "max-batch=32", "--out", out, "--force"],
                    timeout=900)
            wall = time.monotonic() - t0
            s = json.loads((out / "summary.json").read_text())
            windows = sum(f.get("windows", 0) for f in s["files"])
            rows.append(f"| gst-emotion analyze --device {dev} --jobs {jobs} | {wall:.1f} | {windows} | "
                        f"{windows / wall:.1f} | {s['video_seconds'] / wall:.1f} | {self.gpu.between(t0, time.monotonic())} |")
            first_out = first_out or out
        t0 = time.monotonic()
        text = self.sh([self.py, "models/bench_reference_pipeline.py", "--bundle", meld, "--results", first_out,
                        "--device", "cuda" if self.on_gpu else "cpu", *self.batch_clips], timeout=900)
        wall = time.monotonic() - t0
        res = json.loads(text.strip().splitlines()[-1])
        flow = text.strip().splitlines()[0]
        rows.append(f"| seed flow, one utterance at a time ({flow}) | {wall:.1f} | {res['utterances']} | "
                    f"{res['utterances'] / wall:.1f} | | {self.gpu.between(t0, time.monotonic())} |")
        ours = float(rows[0].split("|")[4])
        self.add(f"{len(self.batch_clips)} clips, MELD bundle (random weights), utterance windows, Whisper tiny.en "
                 "on the CPU threads; the seed flow's Whisper is not counted.", "",
                 "| run | wall s | windows | windows/s | video s per s | GPU |", "|---|---|---|---|---|---|", *rows, "",
                 f"Ours on {self.device} against the seed flow: **{ours / (res['utterances'] / wall):.1f}x** windows/s.")

    def live(self):
        seconds = 6 if self.quick else 15
        # (bundle, streams, inference threads): the default bundle's windows are
        # analysed one at a time per inference thread, so the largest count is also
        # run with four of them.
        plans = [("default", 1, 1)] if self.quick else [
            ("default", 16, 1), ("default", 32, 1), ("default", 48, 1), ("default", 48, 4), ("meld", 32, 1)]
        speech = self.w / "media/speech.wav"
        rows = []
        for bundle, n, threads in plans:
            path = "default" if bundle == "default" else str(self.w / "bundles/meld")
            label = bundle if threads == 1 else f"{bundle}, {threads} inference threads"
            if not self.quick and time.monotonic() - self.started > self.a.budget:
                rows.append(f"| {label} | {n} | skipped: the run's time budget ({self.a.budget} s) is spent | | | | | | |")
                continue
            stagger = 1.5 / n
            for i in range(n):
                _delayed_wav(speech, self.w / f"live-{i}.wav", i * stagger)
            t0 = time.monotonic()
            text = self.sh([self.bin / "bench_live", self.w / "media/astronaut.png", self.w / "live-{i}.wav",
                            str(seconds), str(n), f"{stagger:.4f}"],
                           env={"BENCH_BUNDLE": path, "BENCH_PROPS": f"device={self.device} max-batch=32",
                                "GST_EMOTION_INFERENCE_THREADS": str(threads)},
                           timeout=seconds * 4 + 120)
            m = re.search(r"^streams .*$", text, re.M)
            f = dict(zip(m[0].split()[0::2], m[0].split()[1::2]))
            ok = int(f["dropped"]) == 0 and float(f["lag_max"]) <= 0.5
            rows.append(f"| {label} | {n} | {f['windows']} | {f['dropped']} | {f['lag_mean']} / {f['lag_p95']} / "
                        f"{f['lag_max']} | {f['cpu_pct']} | {f['batch_mean']} / {f['batch_max']} | "
                        f"{self.gpu.between(t0, time.monotonic())} | {'met' if ok else 'not met'} |")
            self.add_live(rows, seconds)
        self.add_live(rows, seconds)

    def add_live(self, rows, seconds):
        # Rewrites the section's table as rows arrive.
        marker = "<!-- live -->"
        if marker in self.report:
            del self.report[self.report.index(marker):]
        self.add(marker, f"Live 1280x720 30 fps sources with speech, {seconds} s each, one process, "
                 f"device={self.device} max-batch=32; goal: 0 dropped, every result within 0.5 s of its window's end.", "",
                 "| bundle | streams | windows | dropped | lag mean / p95 / max s | CPU % (of one core) | "
                 "windows per pass mean / max | GPU | goal |", "|---|---|---|---|---|---|---|---|---|", *rows)

    def faces(self):
        batches = [1, 4] if self.quick else [1, 16, 64]
        text = self.sh([self.py, "-c", FACE_FORWARD, "cuda" if self.on_gpu else "cpu",
                        ",".join(map(str, batches)), str(self.w / "bundles/face-light"), str(self.w / "bundles/face-large")])
        self.add("TorchScript forward of the face-sequence models (random weights) through this machine's torch, "
                 "ms per sequence:", "", "| model | input | " + " | ".join(f"batch {b}" for b in batches) + " |",
                 "|---" * (len(batches) + 2) + "|", *text.strip().splitlines())

    def run(self):
        self.section("1. gst-emotion info", self.info)
        if self.report and self.report[-1].startswith("**FAILED**") and self.on_gpu:
            return 1
        self.section("Bundles", self.export)
        self.section("Clips", self.clips)
        self.section("2. MELD forward per batch size, precision and parity", self.forward)
        self.section("3. Batch analysis", self.batch)
        self.section("4. Live capacity", self.live)
        self.section("5. Face-sequence forward", self.faces)
        self.gpu.stop()
        self.add("", f"Run took {time.monotonic() - self.started:.0f} s.")
        failed = sum(1 for line in self.report if line.startswith("**FAILED**"))
        print(f"gpu-check: report {self.out / 'gpu-check.md'} ({failed} section(s) failed)")
        return 1 if failed else 0


def _wav_seconds(path):
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _delayed_wav(src, dst, delay):
    """src with `delay` seconds of silence in front (cameras do not speak in step)."""
    with wave.open(str(src)) as r:
        params, data = r.getparams(), r.readframes(r.getnframes())
    pad = b"\0" * (int(delay * params.framerate) * params.sampwidth * params.nchannels)
    with wave.open(str(dst), "wb") as w:
        w.setparams(params)
        w.writeframes(pad + data)


RANDOM_ENCODER = r"""
import json, sys, torch
sys.path.insert(0, "models")
from transformers import BertConfig, BertModel
from build_default import MeanPooledEncoder
from ts_device import make_device_independent
torch.manual_seed(0)
cfg = BertConfig(**{k: v for k, v in json.load(open(sys.argv[1])).items() if not k.startswith("_")})
bert = BertModel(cfg, add_pooling_layer=True).eval()
bert.config._attn_implementation = "eager"
enc = MeanPooledEncoder(bert).eval()
ids = torch.tensor([[101, 1045, 2572, 3407, 102]])
with torch.no_grad():
    traced = torch.jit.trace(enc, (ids, torch.ones_like(ids)), check_trace=False, strict=False)
traced = make_device_independent(traced)
traced.save(sys.argv[2])
"""

FACE_FORWARD = r"""
import sys, time, tomllib, torch
device, batches = sys.argv[1], [int(b) for b in sys.argv[2].split(",")]
for d in sys.argv[3:]:
    m = tomllib.load(open(d + "/bundle.toml", "rb"))
    spec = next(v for v in m["inputs"].values() if v.get("kind") == "video")
    c = 1 if spec.get("channel_order") == "gray" else 3
    shape = {"TCHW": (spec["frames"], c, spec["height"], spec["width"]),
             "CTHW": (c, spec["frames"], spec["height"], spec["width"]),
             "THWC": (spec["frames"], spec["height"], spec["width"], c)}[spec.get("layout", "TCHW")]
    main = next(x for x in m["models"] if x.get("forward"))
    model = torch.jit.load(d + "/" + main["file"], map_location=device).eval()
    cells = []
    for b in batches:
        x = torch.rand(b, *shape, device=device)
        with torch.no_grad():
            for _ in range(3):
                model(x)
            if device == "cuda":
                torch.cuda.synchronize()
            n = 20 if device == "cuda" else 3
            t = time.perf_counter()
            for _ in range(n):
                model(x)
            if device == "cuda":
                torch.cuda.synchronize()
        cells.append(f"{(time.perf_counter() - t) / n / b * 1e3:.3f}")
    print(f"| {m['name']} | {list(shape)} | " + " | ".join(cells) + " |")
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--budget", type=int, default=420, help="seconds after which live runs are skipped")
    return Check(ap.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
