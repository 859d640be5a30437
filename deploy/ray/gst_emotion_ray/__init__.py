"""Batch analysis with ``gst-emotion analyze`` on a Ray cluster.

The driver lists the inputs once (``gst-emotion analyze INPUTS --list-inputs``),
splits them into groups of nearly equal work (by file size where known), and runs one
Ray task per group. Each task runs the ``gst-emotion`` binary on its node
(``analyze @group --out OUT --summary summary.task-K-of-N.json --jobs J``), so every
node uses the same Rust code path and writes the same files a single ``analyze``
would. Outputs are per input and
atomic, and ``analyze`` skips inputs whose outputs are complete: a task that Ray
retries after its node died redoes only what is missing, and a second run finds
nothing to do. At the end the tasks' summaries are merged into ``OUT/summary.json``
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
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import ray
from ray import cloudpickle

# The task's code travels with it: worker nodes need Ray and the gst-emotion binary,
# not this package.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

__all__ = ["Options", "run", "list_inputs", "groups"]


@dataclass
class Options:
    """What a run analyses and how."""

    inputs: list[str]
    out: str
    binary: str = "gst-emotion"
    tasks: int = 0
    max_retries: int = 3
    cpus_per_task: int = 1
    #: Inputs a task analyses at once per CPU (``analyze --jobs``): one input's
    #: analysis alternates between decoding and the model and does not keep a core
    #: busy alone (docs/benchmarks.md: two per CPU match one local ``--jobs 2``).
    jobs_per_cpu: int = 2
    analyze_args: list[str] = field(default_factory=list)
    progress: bool = True


class AnalysisCrashed(RuntimeError):
    """The analysis process died (a signal or an unexpected exit): Ray retries it."""


class UsageError(RuntimeError):
    """gst-emotion refused the command line: retrying cannot help."""


def groups(uris: list[str], n: int) -> list[list[str]]:
    """``uris`` in ``n`` groups of nearly equal work: the largest first, each to the
    group with the least so far (local files weigh their size; others the mean)."""

    def size(uri: str) -> int | None:
        if not uri.startswith("file://"):
            return None
        try:
            return os.path.getsize(urllib.parse.unquote(uri[len("file://"):]))
        except OSError:
            return None

    sizes = {u: size(u) for u in uris}
    known = [v for v in sizes.values() if v is not None]
    mean = sum(known) / len(known) if known else 1
    load = [0.0] * n
    out: list[list[str]] = [[] for _ in range(n)]
    for uri in sorted(uris, key=lambda u: -(sizes[u] if sizes[u] is not None else mean)):
        k = load.index(min(load))
        out[k].append(uri)
        load[k] += sizes[uri] if sizes[uri] is not None else mean
    return [g for g in out if g]


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
def analyze_group(
    binary: str, uris: list[str], name: str, jobs: int, out: str, args: list[str]
) -> dict:
    """Runs ``gst-emotion analyze`` on ``uris`` (summary ``name``); returns its summary."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(uris) + "\n")
        listing = f.name
    try:
        cmd = [binary, "analyze", "@" + listing, "--out", out, "--summary", name,
               "--jobs", str(jobs), "--print-summary"]
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
        raise AnalysisCrashed(f"{name}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    # The last line of stdout is the summary (the output store may be S3).
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(opts: Options) -> dict:
    """Analyses every input on the connected Ray cluster. Returns the merged summary of
    the output folder (every input once, its best status over all runs) with this
    run's own counts in ``run`` and the tasks whose last try failed in
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
    # One task per slot by default: each task loads the model once (seconds), so
    # fewer, larger tasks cost least; a retried task redoes only its unfinished inputs.
    slots = max(1, cpus // max(1, opts.cpus_per_task))
    parts = groups(uris, opts.tasks or min(len(uris), slots))
    task = analyze_group.options(
        num_cpus=opts.cpus_per_task,
        max_retries=opts.max_retries,
        retry_exceptions=[AnalysisCrashed],
    )
    pending = {}
    for k, part in enumerate(parts):
        name = f"summary.task-{k}-of-{len(parts)}.json"
        jobs = opts.cpus_per_task * opts.jobs_per_cpu
        ref = task.remote(opts.binary, part, name, jobs, out, opts.analyze_args)
        pending[ref] = (name, len(part))
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(uris), unit="input", desc="gst-emotion")
    failures = []
    records = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            name, count = pending.pop(ref)
            try:
                records.extend(ray.get(ref)["files"])
            except Exception as e:  # the task's last try failed: report, go on
                failures.append({"task": name, "error": str(e)})
            if bar is not None:
                bar.update(count)
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
