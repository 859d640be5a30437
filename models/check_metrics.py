"""Checks `gst-emotion eval`'s report.json against scikit-learn on the same predictions.

usage: check_metrics.py OUT_DIR   (the --out folder of an eval run)
Prints "metrics ok" when accuracy, weighted/macro F1, per-class precision/recall/F1/
support and the confusion matrix all match, and the expected calibration error and
the sentiment/emotion consistency computed here (numpy) do too; otherwise what
differs, and exits 1.
"""
import json
import sys

import numpy as np

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
    # Expected calibration error: 10 equal bins (k/10, (k+1)/10] of the top
    # probability, the first closed at 0.
    conf, hit = [], []
    for row in rows:
        g = row["gold"].get(head)
        p = (row.get("predicted") or {}).get(head)
        if g is not None and p is not None:
            conf.append(row["probs"][head][p])
            hit.append(p == g)
    conf, hit = np.clip(np.array(conf), 0, 1), np.array(hit, dtype=float)
    bins = np.clip(np.ceil(conf * 10).astype(int), 1, 10) - 1
    ece = sum((bins == b).mean() * abs(hit[bins == b].mean() - conf[bins == b].mean())
              for b in range(10) if (bins == b).any())
    checks.append(("ece", close(r["ece"], ece)))
    bad += [f"{head} {name}" for name, ok in checks if not ok]
    print(f"{head}: {len(gold)} items, accuracy {accuracy_score(gold, pred):.4f}")
# Sentiment against the polarity of the emotion (surprise goes with any).
polarity = {"joy": "positive", "sadness": "negative", "anger": "negative",
            "fear": "negative", "disgust": "negative", "neutral": "neutral"}
pairs = [(r["predicted"]["emotion"], r["predicted"]["sentiment"]) for r in rows
         if "emotion" in (r.get("predicted") or {}) and "sentiment" in r["predicted"]]
if pairs:
    differ = [polarity.get(e) not in (None, s) for e, s in pairs]
    opposite = [{polarity.get(e), s} == {"positive", "negative"} for e, s in pairs]
    got = report["consistency"]["predicted"]
    if not (got["items"] == len(pairs) and abs(got["disagree"] - np.mean(differ)) < 1e-9
            and abs(got["opposite"] - np.mean(opposite)) < 1e-9):
        bad.append("consistency")
if bad:
    print("metrics differ:", ", ".join(bad))
    sys.exit(1)
print("metrics ok")
