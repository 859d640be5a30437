"""``python -m gst_emotion_ray INPUTS… --out DIR [--address auto]``: see the package
docs and docs/scale.md. Options after ``--`` go to every ``gst-emotion analyze``."""

from __future__ import annotations

import argparse
import json
import sys

import ray

from . import Options, UsageError, run


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    p = argparse.ArgumentParser(
        prog="python -m gst_emotion_ray",
        description="Run gst-emotion analyze over many inputs on a Ray cluster.",
        epilog="Options after -- go to every `gst-emotion analyze` "
        "(e.g. -- --bundle /models/meld --format reference).",
    )
    p.add_argument("inputs", nargs="+", help="files, folders, globs, URIs or @list.txt")
    p.add_argument("--out", required=True,
                   help="output folder every node sees (shared), or s3://BUCKET/PREFIX")
    p.add_argument("--address", default="auto", help="Ray cluster address (default: auto)")
    p.add_argument("--binary", default="gst-emotion", help="gst-emotion on every node")
    p.add_argument("--tasks", type=int, default=0,
                   help="groups of inputs, one task each (default: one per --cpus-per-task "
                   "CPUs of the cluster, at most one per input)")
    p.add_argument("--max-retries", type=int, default=3,
                   help="retries of a task whose node or process died (default 3)")
    p.add_argument("--cpus-per-task", type=int, default=1,
                   help="CPUs a task takes (default 1)")
    p.add_argument("--jobs-per-cpu", type=int, default=2,
                   help="inputs a task analyses at once per CPU (analyze --jobs; default 2)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    ray.init(address=a.address, log_to_driver=False)
    try:
        summary = run(Options(
            inputs=a.inputs, out=a.out, binary=a.binary, tasks=a.tasks,
            max_retries=a.max_retries, cpus_per_task=a.cpus_per_task,
            jobs_per_cpu=a.jobs_per_cpu,
            analyze_args=extra, progress=not a.no_progress,
        ))
    except UsageError as e:
        print(f"gst_emotion_ray: {e}", file=sys.stderr)
        return 2
    finally:
        ray.shutdown()
    keys = ("inputs", "succeeded", "skipped", "failed")
    print(json.dumps({"run": summary["run"], "folder": {k: summary.get(k) for k in keys}}))
    for f in summary.get("task_failures", []):
        print(f"task {f['task']} failed: {f['error']}", file=sys.stderr)
    return 0 if summary.get("failed", 0) == 0 and not summary.get("task_failures") else 1


if __name__ == "__main__":
    sys.exit(main())
