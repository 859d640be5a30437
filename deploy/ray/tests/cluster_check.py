"""A Ray cluster of a head and two worker nodes on this machine (loopback), the
driver run over the given clips, one worker node killed while tasks run, then a
second run; prints one JSON report. Run by tests/ray.rs, which checks the outputs.

    python cluster_check.py BINARY OUT CLIP...
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

# Loopback only: Ray otherwise turns 127.0.0.1 in addresses into the machine's
# outward address (services.resolve_ip_for_localhost), which this test must not use.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gst_emotion_ray  # noqa: E402

LOOPBACK = {"node_ip_address": "127.0.0.1", "include_dashboard": False}


def outputs(out: str) -> dict[str, object]:
    """Every per-input output file and a stamp that changes when it is written again
    (summaries are the runs' own): its mtime in a folder; on S3 (a versioned bucket)
    how many versions it has."""
    if not out.startswith("s3://"):
        if not Path(out).is_dir():
            return {}
        return {
            p.name: p.stat().st_mtime_ns
            for p in sorted(Path(out).iterdir())
            if p.is_file() and not p.name.startswith("summary")
        }
    import boto3

    bucket, _, prefix = out[len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    stamps: dict[str, object] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            name = v["Key"].rsplit("/", 1)[-1]
            if not name.startswith("summary"):
                stamps[name] = stamps.get(name, 0) + 1
    return stamps


def main() -> int:
    binary, out, clips = sys.argv[1], sys.argv[2], sys.argv[3:]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **LOOPBACK})
    workers = [cluster.add_node(num_cpus=1, **LOOPBACK) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    package = str(Path(gst_emotion_ray.__file__).parent)
    report = {}
    try:
        opts = gst_emotion_ray.Options(
            inputs=clips, out=out, binary=binary, tasks=6, progress=False
        )
        result = {}
        first = threading.Thread(target=lambda: result.update(gst_emotion_ray.run(opts)))
        first.start()
        # Kill a worker node once work is under way (an input finished somewhere).
        deadline = time.time() + 300
        done = lambda: sum(1 for n in outputs(out) if n.endswith(".done.json"))  # noqa: E731
        while not done() and time.time() < deadline:
            time.sleep(0.2)
        report["done_before_kill"] = done()
        cluster.remove_node(workers[0], allow_graceful=False)
        report["killed"] = True
        first.join(timeout=600)
        report["first"] = result.get("run")
        report["first_folder"] = {k: result.get(k) for k in ("inputs", "failed")}
        report["first_task_failures"] = result.get("task_failures")
        before = outputs(out)
        second = gst_emotion_ray.run(opts)
        after = outputs(out)
        report["second"] = second["run"]
        report["second_folder"] = {k: second.get(k) for k in ("inputs", "failed")}
        report["rewritten"] = sorted(n for n in after if before.get(n) != after[n])
        report["package"] = package
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
