"""Forward latency of a bundle's TorchScript model from Python, for comparison with
the Rust engine (scripts/bench). Same inputs shapes, same thread count.

usage: python models/bench_python.py BUNDLE_DIR [--iterations N] [--threads N]
"""

import argparse
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for file in ("model.ts", "model.cpu.ts"):
        if (args.bundle / file).exists():
            bench(torch.jit.load(str(args.bundle / file), map_location="cpu").eval(), file, args.iterations)


def bench(model, file: str, iterations: int) -> None:
    for batch in (1, 4, 8):
        inputs = (
            torch.randint(0, 30522, (batch, 128)),
            torch.ones(batch, 128, dtype=torch.long),
            torch.rand(batch, 30, 3, 224, 224),
            torch.randn(batch, 1, 64, 300),
        )
        with torch.no_grad():
            model(*inputs)
            t = time.perf_counter()
            for _ in range(iterations):
                model(*inputs)
        per = (time.perf_counter() - t) / (iterations * batch)
        tag = "python" if file == "model.ts" else "python-cpu-file"
        print(f"RESULT {tag} batch {batch}: {per * 1e3:.1f} ms per window ({file})")


if __name__ == "__main__":
    main()
