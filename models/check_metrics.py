"""Checks `gst-emotion eval`'s report.json against scikit-learn on the same predictions.

usage: check_metrics.py OUT_DIR   (the --out folder of an eval run)
Prints "metrics ok" when accuracy, weighted/macro F1, per-class precision/recall/F1/
support and the confusion matrix all match; otherwise what differs, and exits 1.
"""
import json
import sys

from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)

out = sys.argv[1]
report = json.load(open(f"{out}/report.json"))
rows = [json.loads(line) for line in open(f"{out}/predictions.jsonl")]
bad = []
for head, r in report["heads"].items():
    gold, pred = [], []
    for row in rows:
        g = row["gold"].get(head)
        p = (row.get("predicted") or {}).get(head)
        if g is not None and p is not None:
            gold.append(g)
            pred.append(p)
    labels = sorted(set(gold) | set(pred))
    close = lambda a, b: abs(a - b) < 1e-9
    checks = [
        ("items", r["items"] == len(gold)),
        ("labels", r["labels"] == labels),
        ("accuracy", close(r["accuracy"], accuracy_score(gold, pred))),
        ("weighted_f1", close(r["weighted_f1"],
                              f1_score(gold, pred, average="weighted", zero_division=0))),
        ("macro_f1", close(r["macro_f1"], f1_score(gold, pred, average="macro", zero_division=0))),
        ("confusion", r["confusion"] == confusion_matrix(gold, pred, labels=labels).tolist()),
    ]
    p, rc, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    for i, c in enumerate(r["classes"]):
        checks.append((f"{c['label']} scores", c["label"] == labels[i]
                       and close(c["precision"], p[i]) and close(c["recall"], rc[i])
                       and close(c["f1"], f[i]) and c["support"] == s[i]))
    bad += [f"{head} {name}" for name, ok in checks if not ok]
    print(f"{head}: {len(gold)} items, accuracy {accuracy_score(gold, pred):.4f}")
if bad:
    print("metrics differ:", ", ".join(bad))
    sys.exit(1)
print("metrics ok")
