"""Batch analysis with ``gst-emotion analyze`` on a Ray cluster.

The driver lists the inputs once (``gst-emotion analyze INPUTS --list-inputs``),
splits them into shards by the same URI hash ``analyze --shard I/N`` uses, and runs
one Ray task per non-empty shard. Each task runs the ``gst-emotion`` binary on its
node (``analyze @list --shard I/N --out OUT``), so every node uses the same Rust code
path and writes the same files a single ``analyze`` would. Outputs are per input and
atomic, and ``analyze`` skips inputs whose outputs are complete: a task that Ray
retries after its node died redoes only what is missing, and a second run finds
nothing to do. At the end the shards' summaries are merged into ``OUT/summary.json``
(``gst-emotion merge``).

``--out`` is a folder every node sees at the same path (a shared volume), or an S3
prefix (``s3://bucket/prefix``; every node needs the ``AWS_*`` environment).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ray
from ray import cloudpickle

# The task's code travels with it: worker nodes need Ray and the gst-emotion binary,
# not this package.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

__all__ = ["Options", "run", "list_inputs", "shard_of"]


@dataclass
class Options:
    """What a run analyses and how."""

    inputs: list[str]
    out: str
    binary: str = "gst-emotion"
    tasks: int = 0
    max_retries: int = 3
    cpus_per_task: float = 1.0
    analyze_args: list[str] = field(default_factory=list)
    progress: bool = True


class AnalysisCrashed(RuntimeError):
    """The analysis process died (a signal or an unexpected exit): Ray retries it."""


class UsageError(RuntimeError):
    """gst-emotion refused the command line: retrying cannot help."""


def shard_of(uri: str, shards: int) -> int:
    """The shard of ``uri``: FNV-1a of its bytes modulo ``shards``, as ``analyze``."""
    h = 0xCBF29CE484222325
    for b in uri.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % shards


def list_inputs(binary: str, inputs: list[str]) -> list[str]:
    """The inputs as ``analyze`` expands them (folders, globs, @lists): one URI each."""
    proc = subprocess.run(
        [binary, "analyze", *inputs, "--list-inputs"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise UsageError(f"gst-emotion analyze --list-inputs failed: {proc.stderr.strip()}")
    return [line for line in proc.stdout.splitlines() if line]


def _die_with_parent() -> None:
    """In the child: be killed when the Ray worker that started it dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@ray.remote
def analyze_shard(
    binary: str, uris: list[str], shard: int, shards: int, out: str, args: list[str]
) -> dict:
    """Runs ``gst-emotion analyze`` on shard ``shard`` of ``uris``; returns its summary."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(uris) + "\n")
        listing = f.name
    try:
        cmd = [binary, "analyze", "@" + listing, "--out", out, "--shard", f"{shard}/{shards}",
               "--print-summary"]
        proc = subprocess.run(
            [*cmd, *args],
            capture_output=True,
            text=True,
            preexec_fn=_die_with_parent,
            check=False,
        )
    finally:
        os.unlink(listing)
    # 0: all done; 1: some inputs failed (recorded in the summary, not retried).
    if proc.returncode == 2:
        raise UsageError(proc.stderr.strip())
    if proc.returncode not in (0, 1):
        raise AnalysisCrashed(
            f"shard {shard}/{shards}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        )
    # The last line of stdout is the summary (the output store may be S3).
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(opts: Options) -> dict:
    """Analyses every input on the connected Ray cluster. Returns the merged summary of
    the output folder (every input once, its best status over all runs) with this
    run's own counts in ``run`` and the shards whose last try failed in
    ``task_failures``."""
    if opts.out.startswith("s3://"):
        out = opts.out.rstrip("/")
    else:
        Path(opts.out).mkdir(parents=True, exist_ok=True)
        out = str(Path(opts.out).resolve())
    uris = list_inputs(opts.binary, opts.inputs)
    if not uris:
        raise UsageError("no inputs")
    cpus = int(ray.cluster_resources().get("CPU", 1))
    shards = opts.tasks or max(1, min(len(uris), 2 * cpus))
    sizes: dict[int, int] = {}
    for uri in uris:
        k = shard_of(uri, shards)
        sizes[k] = sizes.get(k, 0) + 1
    listed = ray.put(uris)
    task = analyze_shard.options(
        num_cpus=opts.cpus_per_task,
        max_retries=opts.max_retries,
        retry_exceptions=[AnalysisCrashed],
    )
    pending = {
        task.remote(opts.binary, listed, k, shards, out, opts.analyze_args): k
        for k in sorted(sizes)
    }
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(uris), unit="input", desc="gst-emotion")
    failures = []
    records = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            k = pending.pop(ref)
            try:
                records.extend(ray.get(ref)["files"])
            except Exception as e:  # the task's last try failed: report, go on
                failures.append({"shard": f"{k}/{shards}", "error": str(e)})
            if bar is not None:
                bar.update(sizes[k])
    if bar is not None:
        bar.close()
    # The folder's (or prefix's) summary: written there, and read back from stdout.
    merged = []
    for target in (f"{out}/summary.json", None):
        proc = subprocess.run(
            [opts.binary, "merge", out, *(["--out", target] if target else [])],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode not in (0, 1):
            raise RuntimeError(
                f"gst-emotion merge failed: {proc.stderr.strip()}; task failures: {failures}"
            )
        merged.append(proc.stdout)
    summary = json.loads(merged[1])
    count = lambda status: sum(1 for r in records if r.get("status") == status)  # noqa: E731
    summary["run"] = {
        "inputs": len(records),
        "succeeded": count("ok"),
        "skipped": count("skipped"),
        "failed": count("error"),
    }
    summary["task_failures"] = failures
    return summary
