//! VADER sentiment (Hutto & Gilbert, 2014): the lexicon and rules of the
//! `vaderSentiment` 3.3.2 Python package, ported rule for rule — negation, boosters
//! and dampeners, ALL-CAPS emphasis, "but", "least", "never so/this", "without
//! doubt", special idioms, and `!`/`?` emphasis — so the compound score equals the
//! package's (checked by tests/vader.rs against the package). Emoji descriptions are
//! not substituted (transcripts carry no emoji).

use std::collections::HashMap;
use std::path::Path;

const B_INCR: f64 = 0.293;
const B_DECR: f64 = -0.293;
const C_INCR: f64 = 0.733;
const N_SCALAR: f64 = -0.74;

const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

const INCR: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerable",
    "considerably",
    "decidedly",
    "deeply",
    "effing",
    "enormous",
    "enormously",
    "entirely",
    "especially",
    "exceptional",
    "exceptionally",
    "extreme",
    "extremely",
    "fabulously",
    "flipping",
    "flippin",
    "frackin",
    "fracking",
    "fricking",
    "frickin",
    "frigging",
    "friggin",
    "fully",
    "fuckin",
    "fucking",
    "fuggin",
    "fugging",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredible",
    "incredibly",
    "intensely",
    "major",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "total",
    "totally",
    "tremendous",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utter",
    "utterly",
    "very",
];

const DECR: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "just enough",
    "kind of",
    "kinda",
    "kindof",
    "kind-of",
    "less",
    "little",
    "marginal",
    "marginally",
    "occasional",
    "occasionally",
    "partly",
    "scarce",
    "scarcely",
    "slight",
    "slightly",
    "somewhat",
    "sort of",
    "sorta",
    "sortof",
    "sort-of",
];

const SPECIAL_CASES: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// VADER's scores for one text.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Polarity {
    /// Normalised sum of valences in [-1, 1] (not rounded).
    pub compound: f64,
    /// Share of positive weight.
    pub pos: f64,
    /// Share of neutral weight.
    pub neu: f64,
    /// Share of negative weight.
    pub neg: f64,
}

/// The VADER analyser with its lexicon.
#[derive(Clone, Debug)]
pub struct Vader {
    lexicon: HashMap<String, f64>,
    boosters: HashMap<&'static str, f64>,
}

fn booster_map() -> HashMap<&'static str, f64> {
    INCR.iter()
        .map(|w| (*w, B_INCR))
        .chain(DECR.iter().map(|w| (*w, B_DECR)))
        .collect()
}

/// Python's `str.isupper()`: at least one cased character and no lowercase one.
fn is_upper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() {
            return false;
        }
        if c.is_uppercase() {
            cased = true;
        }
    }
    cased
}

fn negated(word: &str) -> bool {
    NEGATE.contains(&word) || word.contains("n't")
}

/// Why a VADER lexicon could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    /// The file could not be read.
    #[error("{path}: cannot read the VADER lexicon: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// A line is not `word<TAB>valence…`: which one, why.
    #[error("line {line}: {reason}")]
    Line {
        /// The line number (from 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The lexicon as a whole is unusable.
    #[error("{0}")]
    Bad(String),
    /// What is wrong with the lexicon read from `path`.
    #[error("{path}: {error}")]
    InFile {
        /// The file.
        path: String,
        /// What is wrong.
        error: Box<LexiconError>,
    },
}

impl Vader {
    /// Reads `vader_lexicon.txt` (token TAB mean-valence TAB ...).
    pub fn from_file(path: &Path) -> Result<Self, LexiconError> {
        let text = std::fs::read_to_string(path).map_err(|e| LexiconError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_lexicon(&text).map_err(|e| LexiconError::InFile {
            path: path.display().to_string(),
            error: Box::new(e),
        })
    }

    /// Parses the lexicon text.
    pub fn from_lexicon(text: &str) -> Result<Self, LexiconError> {
        let mut lexicon = HashMap::new();
        for (n, line) in text.trim_end_matches('\n').split('\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let mut parts = line.trim().split('\t');
            let (Some(word), Some(measure)) = (parts.next(), parts.next()) else {
                return Err(LexiconError::Line {
                    line: n + 1,
                    reason: "expected word<TAB>valence".into(),
                });
            };
            let v: f64 = measure.parse().map_err(|_| LexiconError::Line {
                line: n + 1,
                reason: format!("bad valence {measure:?}"),
            })?;
            lexicon.insert(word.to_string(), v);
        }
        if lexicon.is_empty() {
            return Err(LexiconError::Bad("the lexicon is empty".into()));
        }
        Ok(Self {
            lexicon,
            boosters: booster_map(),
        })
    }

    fn in_lexicon(&self, w: &str) -> bool {
        self.lexicon.contains_key(w)
    }

    fn scalar_inc_dec(&self, word: &str, valence: f64, cap_diff: bool) -> f64 {
        let lower = word.to_lowercase();
        let Some(&b) = self.boosters.get(lower.as_str()) else {
            return 0.0;
        };
        let mut scalar = if valence < 0.0 { -b } else { b };
        if is_upper(word) && cap_diff {
            if valence > 0.0 {
                scalar += C_INCR;
            } else {
                scalar -= C_INCR;
            }
        }
        scalar
    }

    /// VADER's polarity scores of `text`.
    pub fn polarity(&self, text: &str) -> Polarity {
        let text = text.trim();
        let words: Vec<&str> = text.split_whitespace().map(strip_punc_if_word).collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let allcaps = words.iter().filter(|w| is_upper(w)).count();
        let diff = words.len() - allcaps;
        let cap_diff = 0 < diff && diff < words.len();

        let mut sentiments: Vec<f64> = Vec::with_capacity(words.len());
        for (i, item) in words.iter().enumerate() {
            let l = &lower[i];
            if self.boosters.contains_key(l.as_str()) {
                sentiments.push(0.0);
                continue;
            }
            if i + 1 < words.len() && l == "kind" && lower[i + 1] == "of" {
                sentiments.push(0.0);
                continue;
            }
            sentiments.push(self.valence(item, i, &words, &lower, cap_diff));
        }
        but_check(&lower, &mut sentiments);
        score_valence(&sentiments, text)
    }

    fn valence(&self, item: &str, i: usize, words: &[&str], lower: &[String], cap: bool) -> f64 {
        let l = &lower[i];
        let Some(&base) = self.lexicon.get(l.as_str()) else {
            return 0.0;
        };
        let mut valence = base;
        if l == "no" && i != words.len() - 1 && self.in_lexicon(&lower[i + 1]) {
            valence = 0.0;
        }
        if (i > 0 && lower[i - 1] == "no")
            || (i > 1 && lower[i - 2] == "no")
            || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
        {
            valence = base * N_SCALAR;
        }
        if is_upper(item) && cap {
            if valence > 0.0 {
                valence += C_INCR;
            } else {
                valence -= C_INCR;
            }
        }
        for start_i in 0..3 {
            if i > start_i && !self.in_lexicon(&lower[i - (start_i + 1)]) {
                let mut s = self.scalar_inc_dec(words[i - (start_i + 1)], valence, cap);
                if start_i == 1 && s != 0.0 {
                    s *= 0.95;
                }
                if start_i == 2 && s != 0.0 {
                    s *= 0.9;
                }
                valence += s;
                valence = negation_check(valence, lower, start_i, i);
                if start_i == 2 {
                    valence = self.special_idioms_check(valence, lower, i);
                }
            }
        }
        // "least" check.
        if i > 1 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
            if lower[i - 2] != "at" && lower[i - 2] != "very" {
                valence *= N_SCALAR;
            }
        } else if i > 0 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
            valence *= N_SCALAR;
        }
        valence
    }

    fn special_idioms_check(&self, mut valence: f64, w: &[String], i: usize) -> f64 {
        let onezero = format!("{} {}", w[i - 1], w[i]);
        let twoonezero = format!("{} {} {}", w[i - 2], w[i - 1], w[i]);
        let twoone = format!("{} {}", w[i - 2], w[i - 1]);
        let threetwoone = format!("{} {} {}", w[i - 3], w[i - 2], w[i - 1]);
        let threetwo = format!("{} {}", w[i - 3], w[i - 2]);
        let special = |s: &str| SPECIAL_CASES.iter().find(|(k, _)| *k == s).map(|(_, v)| *v);
        for seq in [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo] {
            if let Some(v) = special(seq) {
                valence = v;
                break;
            }
        }
        if w.len() - 1 > i
            && let Some(v) = special(&format!("{} {}", w[i], w[i + 1]))
        {
            valence = v;
        }
        if w.len() - 1 > i + 1
            && let Some(v) = special(&format!("{} {} {}", w[i], w[i + 1], w[i + 2]))
        {
            valence = v;
        }
        for n_gram in [&threetwoone, &threetwo, &twoone] {
            if let Some(b) = self.boosters.get(n_gram.as_str()) {
                valence += b;
            }
        }
        valence
    }
}

/// Strips leading/trailing ASCII punctuation unless that leaves two characters or
/// fewer (then it was probably an emoticon such as ":)").
fn strip_punc_if_word(token: &str) -> &str {
    let stripped = token.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().count() <= 2 {
        token
    } else {
        stripped
    }
}

fn negation_check(mut valence: f64, w: &[String], start_i: usize, i: usize) -> f64 {
    match start_i {
        0 => {
            if negated(&w[i - 1]) {
                valence *= N_SCALAR;
            }
        }
        1 => {
            if w[i - 2] == "never" && (w[i - 1] == "so" || w[i - 1] == "this") {
                valence *= 1.25;
            } else if w[i - 2] == "without" && w[i - 1] == "doubt" {
            } else if negated(&w[i - 2]) {
                valence *= N_SCALAR;
            }
        }
        _ => {
            if (w[i - 3] == "never" && (w[i - 2] == "so" || w[i - 2] == "this"))
                || (w[i - 1] == "so" || w[i - 1] == "this")
            {
                valence *= 1.25;
            } else if w[i - 3] == "without" && (w[i - 2] == "doubt" || w[i - 1] == "doubt") {
            } else if negated(&w[i - 3]) {
                valence *= N_SCALAR;
            }
        }
    }
    valence
}

/// Halves the sentiment before the first "but" and boosts the one after it by half,
/// reproducing the package's in-place update (which looks values up by equality).
fn but_check(lower: &[String], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let sentiment = sentiments[k];
        let si = sentiments
            .iter()
            .position(|&s| s == sentiment)
            .expect("the value is in the list");
        if si < bi {
            sentiments[si] = sentiment * 0.5;
        } else if si > bi {
            sentiments[si] = sentiment * 1.5;
        }
    }
}

fn score_valence(sentiments: &[f64], text: &str) -> Polarity {
    if sentiments.is_empty() {
        return Polarity::default();
    }
    let mut sum: f64 = sentiments.iter().sum();
    let ep = text.matches('!').count().min(4) as f64 * 0.292;
    let qm_count = text.matches('?').count();
    let qm = match qm_count {
        0 | 1 => 0.0,
        2..=3 => qm_count as f64 * 0.18,
        _ => 0.96,
    };
    let amp = ep + qm;
    if sum > 0.0 {
        sum += amp;
    } else if sum < 0.0 {
        sum -= amp;
    }
    let compound = (sum / (sum * sum + 15.0).sqrt()).clamp(-1.0, 1.0);
    let (mut pos, mut neg, mut neu) = (0.0, 0.0, 0usize);
    for &s in sentiments {
        if s > 0.0 {
            pos += s + 1.0;
        }
        if s < 0.0 {
            neg += s - 1.0;
        }
        if s == 0.0 {
            neu += 1;
        }
    }
    if pos > neg.abs() {
        pos += amp;
    } else if pos < neg.abs() {
        neg -= amp;
    }
    let total = pos + neg.abs() + neu as f64;
    Polarity {
        compound,
        pos: (pos / total).abs(),
        neg: (neg / total).abs(),
        neu: (neu as f64 / total).abs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vader() -> Vader {
        Vader::from_lexicon("good\t1.9\t0.9\t[]\nbad\t-2.5\t0.5\t[]\nhappy\t2.7\t0.1\t[]\n")
            .unwrap()
    }

    #[test]
    fn rules_move_the_score_the_documented_way() {
        let v = vader();
        let good = v.polarity("The book was good.").compound;
        assert!(good > 0.0);
        assert!(v.polarity("The book was very good.").compound > good);
        assert!(v.polarity("The book was good!!").compound > good);
        assert!(v.polarity("The book was not good.").compound < 0.0);
        assert!(v.polarity("The book was GOOD.").compound > good);
        // After "but" the second clause dominates.
        assert!(
            v.polarity("The book was good, but the film was bad.")
                .compound
                < 0.0
        );
        assert_eq!(v.polarity("").compound, 0.0);
        assert_eq!(v.polarity("The table is wooden.").compound, 0.0);
    }

    #[test]
    fn python_isupper_semantics() {
        assert!(is_upper("GOOD"));
        assert!(is_upper("GOOD!"));
        assert!(!is_upper("Good"));
        assert!(!is_upper("123"));
        assert_eq!(strip_punc_if_word(":)"), ":)");
        assert_eq!(strip_punc_if_word("good!!"), "good");
    }
}
