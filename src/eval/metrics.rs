//! Classification metrics as scikit-learn computes them (`accuracy_score`,
//! `precision_recall_fscore_support` with `zero_division=0`, `f1_score` weighted and
//! macro over the labels present in the gold or predicted labels, `confusion_matrix`),
//! and the word error rate of a transcript.

use std::collections::BTreeSet;

use serde::Serialize;

/// Precision, recall, F1 and support of one class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    /// The class label.
    pub label: String,
    /// Of the items predicted as this class, the share that are.
    pub precision: f64,
    /// Of the items of this class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Items of this class in the gold labels.
    pub support: usize,
}

/// The evaluation of one head's predictions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Items evaluated.
    pub items: usize,
    /// Share of items predicted right.
    pub accuracy: f64,
    /// F1 averaged over classes, weighted by support.
    pub weighted_f1: f64,
    /// F1 averaged over classes, unweighted.
    pub macro_f1: f64,
    /// Per class, in label order.
    pub classes: Vec<ClassScores>,
    /// The labels of the confusion matrix's rows (gold) and columns (predicted).
    pub labels: Vec<String>,
    /// `confusion[i][j]`: items of gold class `labels[i]` predicted as `labels[j]`.
    pub confusion: Vec<Vec<usize>>,
}

/// Scores `predicted` against `gold`. The classes are the labels present in either
/// (sorted), as scikit-learn does by default.
pub fn report(gold: &[String], predicted: &[String]) -> Report {
    assert_eq!(gold.len(), predicted.len(), "one prediction per item");
    let labels: Vec<String> = gold
        .iter()
        .chain(predicted)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index = |l: &String| labels.iter().position(|x| x == l).expect("a known label");
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (g, p) in gold.iter().zip(predicted) {
        confusion[index(g)][index(p)] += 1;
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let classes: Vec<ClassScores> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let tp = confusion[i][i];
            let predicted_as: usize = confusion.iter().map(|row| row[i]).sum();
            let support: usize = confusion[i].iter().sum();
            let precision = ratio(tp, predicted_as);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassScores {
                label: label.clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let items = gold.len();
    let correct = (0..n).map(|i| confusion[i][i]).sum();
    Report {
        items,
        accuracy: ratio(correct, items),
        weighted_f1: if items == 0 {
            0.0
        } else {
            classes.iter().map(|c| c.f1 * c.support as f64).sum::<f64>() / items as f64
        },
        macro_f1: if n == 0 {
            0.0
        } else {
            classes.iter().map(|c| c.f1).sum::<f64>() / n as f64
        },
        classes,
        labels,
        confusion,
    }
}

/// Words for the word error rate, normalised the way Whisper's English normaliser does
/// the common cases: lower case, no punctuation, contractions expanded ("they're" →
/// "they are", "won't" → "will not"), "mr."-style abbreviations and hyphens split,
/// numbers under a hundred as digits ("twenty-one" → "21", so "at 3" is "at three").
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .split(|c: char| c.is_whitespace() || c == '-' || c == '—')
    {
        let w: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'')
            .collect::<String>()
            .trim_matches('\'')
            .to_string();
        if w.is_empty() {
            continue;
        }
        out.extend(expand(&w).split(' ').map(str::to_owned));
    }
    digits(out)
}

/// Number words under a hundred as digits: "twenty" "one" → "21", "seven" → "7".
fn digits(words: Vec<String>) -> Vec<String> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let unit = |w: &str| UNITS.iter().position(|u| *u == w);
    let mut out = Vec::with_capacity(words.len());
    let mut it = words.into_iter().peekable();
    while let Some(w) = it.next() {
        if let Some(t) = TENS.iter().position(|t| *t == w) {
            let mut n = 20 + 10 * t;
            if let Some(u) = it
                .peek()
                .and_then(|next| unit(next))
                .filter(|u| (1..10).contains(u))
            {
                n += u;
                it.next();
            }
            out.push(n.to_string());
        } else if let Some(u) = unit(&w) {
            out.push(u.to_string());
        } else {
            out.push(w);
        }
    }
    out
}

/// A contraction as its words; other words unchanged.
fn expand(w: &str) -> String {
    let whole = match w {
        "won't" => Some("will not"),
        "can't" | "cannot" => Some("can not"),
        "shan't" => Some("shall not"),
        "ain't" => Some("is not"),
        "let's" => Some("let us"),
        _ => None,
    };
    if let Some(e) = whole {
        return e.to_string();
    }
    for (suffix, full) in [
        ("n't", " not"),
        ("'re", " are"),
        ("'m", " am"),
        ("'ll", " will"),
        ("'ve", " have"),
        ("'d", " would"),
        ("'s", " is"),
    ] {
        if let Some(stem) = w.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return format!("{stem}{full}");
        }
    }
    w.to_string()
}

/// Word edit distance (substitutions + insertions + deletions) between a reference
/// and a hypothesis.
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// Expected calibration error (Guo et al., 2017): the items binned by their
/// confidence (the top probability) into `bins` equal-width bins over [0, 1]; the
/// gap between each bin's accuracy and mean confidence, weighted by its share of the
/// items. 0 when confidence matches accuracy; 0 for no items.
pub fn calibration_error(confidence: &[f64], correct: &[bool], bins: usize) -> f64 {
    assert_eq!(confidence.len(), correct.len(), "one confidence per item");
    let bins = bins.max(1);
    let mut sum_conf = vec![0.0; bins];
    let mut hits = vec![0usize; bins];
    let mut count = vec![0usize; bins];
    for (&c, &ok) in confidence.iter().zip(correct) {
        let c = c.clamp(0.0, 1.0);
        // (k/bins, (k+1)/bins], the first bin closed at 0.
        let b = ((c * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        sum_conf[b] += c;
        hits[b] += usize::from(ok);
        count[b] += 1;
    }
    let n = confidence.len();
    if n == 0 {
        return 0.0;
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let k = count[b] as f64;
            (k / n as f64) * (hits[b] as f64 / k - sum_conf[b] / k).abs()
        })
        .sum()
}

/// The sentiment an emotion implies: joy positive; sadness, anger, fear and disgust
/// negative; neutral neutral; surprise either (`None`), as are labels not listed.
pub fn polarity(emotion: &str) -> Option<&'static str> {
    match emotion {
        "joy" => Some("positive"),
        "sadness" | "anger" | "fear" | "disgust" => Some("negative"),
        "neutral" => Some("neutral"),
        _ => None,
    }
}

/// How often a sentiment disagrees with the polarity of its emotion.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Consistency {
    /// Pairs looked at.
    pub items: usize,
    /// Share whose sentiment is not the emotion's polarity (surprise agrees with any).
    pub disagree: f64,
    /// Share whose sentiment is the opposite one (positive against a negative emotion,
    /// or negative against joy).
    pub opposite: f64,
}

/// The [`Consistency`] of (emotion, sentiment) pairs.
pub fn consistency<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Consistency {
    let (mut items, mut disagree, mut opposite) = (0usize, 0usize, 0usize);
    for (emotion, sentiment) in pairs {
        items += 1;
        let Some(p) = polarity(emotion) else { continue };
        if p != sentiment {
            disagree += 1;
            if matches!(
                (p, sentiment),
                ("positive", "negative") | ("negative", "positive")
            ) {
                opposite += 1;
            }
        }
    }
    let share = |k: usize| {
        if items == 0 {
            0.0
        } else {
            k as f64 / items as f64
        }
    };
    Consistency {
        items,
        disagree: share(disagree),
        opposite: share(opposite),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_error_is_the_weighted_gap_per_confidence_bin() {
        // Confident and always right: a gap of 0.1 in the top bin.
        assert!((calibration_error(&[0.9, 0.9], &[true, true], 10) - 0.1).abs() < 1e-12);
        // Half the items at 0.8 (half right: gap 0.3), half at 0.3 (right: gap 0.7).
        let e = calibration_error(&[0.8, 0.8, 0.3, 0.3], &[true, false, true, true], 10);
        assert!((e - (0.5 * 0.3 + 0.5 * 0.7)).abs() < 1e-12, "{e}");
        // Confidence that matches accuracy.
        let c = [0.75; 4];
        assert!(calibration_error(&c, &[true, true, true, false], 10).abs() < 1e-12);
        assert_eq!(calibration_error(&[], &[], 10), 0.0);
        // 1.0 falls in the top bin, 0.0 in the first.
        assert!((calibration_error(&[1.0, 0.0], &[true, true], 10) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn consistency_counts_sentiments_against_their_emotions() {
        let c = consistency([
            ("joy", "positive"),
            ("sadness", "positive"),
            ("anger", "neutral"),
            ("surprise", "negative"),
        ]);
        assert_eq!(c.items, 4);
        assert_eq!(c.disagree, 0.5);
        assert_eq!(c.opposite, 0.25);
        assert_eq!(consistency([]).disagree, 0.0);
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_small_case_by_hand() {
        let gold = v(&["a", "a", "b", "b", "c"]);
        let pred = v(&["a", "b", "b", "b", "a"]);
        let r = report(&gold, &pred);
        assert_eq!(r.labels, v(&["a", "b", "c"]));
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]
        );
        assert!((r.accuracy - 0.6).abs() < 1e-12);
        // a: p 1/2 r 1/2; b: p 2/3 r 1; c: 0.
        assert!((r.classes[0].f1 - 0.5).abs() < 1e-12);
        assert!((r.classes[1].f1 - 0.8).abs() < 1e-12);
        assert_eq!(r.classes[2].f1, 0.0);
        assert!((r.macro_f1 - 1.3 / 3.0).abs() < 1e-12);
        assert!((r.weighted_f1 - (0.5 * 2.0 + 0.8 * 2.0) / 5.0).abs() < 1e-12);
    }

    #[test]
    fn numbers_count_the_same_in_words_or_digits() {
        assert_eq!(
            words("The meeting is at three o'clock."),
            words("the meeting is at 3 o'clock")
        );
        assert_eq!(words("twenty-one"), ["21"]);
        assert_eq!(words("twenty one years"), ["21", "years"]);
        assert_eq!(words("ninety nine, twenty"), ["99", "20"]);
        assert_eq!(words("platform 4"), words("Platform four!"));
    }

    #[test]
    fn word_error_rate() {
        let r = words("I can't stop crying, really.");
        assert_eq!(r, v(&["i", "can", "not", "stop", "crying", "really"]));
        assert_eq!(word_errors(&r, &words("I can stop crying really")), 1);
        assert_eq!(word_errors(&r, &[]), 6);
        assert_eq!(word_errors(&[], &r), 6);
        // Contractions and their expansions are the same words.
        assert_eq!(
            words("They're here, aren't they?"),
            words("they are here are not they")
        );
        assert_eq!(words("Well-known"), v(&["well", "known"]));
    }
}
