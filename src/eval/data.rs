//! Labelled data for `gst-emotion eval`: a MELD-format CSV (`Utterance, Emotion,
//! Sentiment, Dialogue_ID, Utterance_ID`, clips `dia{D}_utt{U}.mp4`) or a labelled
//! text file (CSV or TSV with `text` and `emotion` and/or `sentiment` columns).

use std::path::{Path, PathBuf};

/// One labelled item.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// A stable id: `dia{D}_utt{U}` for MELD, the line number for text files.
    pub id: String,
    /// What is said.
    pub text: String,
    /// Gold emotion label (normalised to the bundle vocabulary), if given.
    pub emotion: Option<String>,
    /// Gold sentiment label, if given.
    pub sentiment: Option<String>,
    /// The item's clip (MELD data).
    pub clip: Option<PathBuf>,
}

impl Item {
    /// The gold label for head `head` (`emotion` or `sentiment`), if given.
    pub fn gold(&self, head: &str) -> Option<&String> {
        match head {
            "emotion" => self.emotion.as_ref(),
            "sentiment" => self.sentiment.as_ref(),
            _ => None,
        }
    }
}

/// What kind of data a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// MELD-format CSV with clips.
    Meld,
    /// Labelled sentences.
    Text,
}

/// Why labelled data could not be read: the file (and line) and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// Reads `path`; MELD clips are looked up in `clips` (default: the CSV's folder).
pub fn load(path: &Path, clips: Option<&Path>) -> Result<(DataKind, Vec<Item>), DataError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| DataError(format!("{}: {e}", path.display())))?;
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.contains('\t') { b'\t' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| DataError(format!("{}: {e}", path.display())))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let meld = ["Utterance", "Dialogue_ID", "Utterance_ID"]
        .iter()
        .all(|c| col(c).is_some());
    let (kind, text_col) = if meld {
        (DataKind::Meld, col("Utterance"))
    } else {
        (DataKind::Text, col("text").or_else(|| col("sentence")))
    };
    let text_col = text_col.ok_or_else(|| {
        DataError(format!(
            "{}: no text column: a MELD CSV needs Utterance, Dialogue_ID, Utterance_ID; a \
             labelled text file needs text and emotion and/or sentiment (found {headers:?})",
            path.display()
        ))
    })?;
    let (emotion_col, sentiment_col) = (col("emotion"), col("sentiment"));
    if emotion_col.is_none() && sentiment_col.is_none() {
        return Err(DataError(format!(
            "{}: no emotion or sentiment column (found {headers:?})",
            path.display()
        )));
    }
    let clip_dir = clips
        .map(Path::to_path_buf)
        .or_else(|| path.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut items = Vec::new();
    for (k, row) in reader.records().enumerate() {
        let row = row.map_err(|e| DataError(format!("{}: {e}", path.display())))?;
        let get = |c: Option<usize>| c.and_then(|c| row.get(c)).map(str::trim);
        let line = k + 2;
        let text = get(Some(text_col)).unwrap_or_default().to_string();
        if text.is_empty() {
            continue;
        }
        let emotion =
            match get(emotion_col).filter(|s| !s.is_empty()) {
                Some(e) => Some(emotion_label(e).ok_or_else(|| {
                    DataError(format!("{}:{line}: emotion {e:?}", path.display()))
                })?),
                None => None,
            };
        let sentiment =
            match get(sentiment_col).filter(|s| !s.is_empty()) {
                Some(s) => Some(sentiment_label(s).ok_or_else(|| {
                    DataError(format!("{}:{line}: sentiment {s:?}", path.display()))
                })?),
                None => None,
            };
        let (id, clip) = match kind {
            DataKind::Meld => {
                let d = get(col("Dialogue_ID")).unwrap_or_default();
                let u = get(col("Utterance_ID")).unwrap_or_default();
                let id = format!("dia{d}_utt{u}");
                let clip = clip_dir.join(format!("{id}.mp4"));
                (id, Some(clip))
            }
            DataKind::Text => (format!("line{line}"), None),
        };
        items.push(Item {
            id,
            text: clean_text(&text),
            emotion,
            sentiment,
            clip,
        });
    }
    Ok((kind, items))
}

/// MELD's text has Windows-1252 quotes decoded as mojibake in places; make it plain.
fn clean_text(s: &str) -> String {
    s.replace(['\u{2019}', '\u{2018}'], "'")
        .replace(['\u{201c}', '\u{201d}'], "\"")
        .replace("\u{0092}", "'")
        .replace("\u{0085}", "...")
}

/// The emotion head's label for a gold label (MELD's, or a common synonym).
pub fn emotion_label(s: &str) -> Option<String> {
    let l = s.trim().to_lowercase();
    let label = match l.as_str() {
        "anger" | "angry" | "mad" => "anger",
        "disgust" | "disgusted" => "disgust",
        "fear" | "afraid" | "scared" | "fearful" => "fear",
        "joy" | "happy" | "happiness" => "joy",
        "neutral" | "none" => "neutral",
        "sadness" | "sad" => "sadness",
        "surprise" | "surprised" => "surprise",
        _ => return None,
    };
    Some(label.into())
}

/// The sentiment head's label for a gold label.
pub fn sentiment_label(s: &str) -> Option<String> {
    let l = s.trim().to_lowercase();
    let label = match l.as_str() {
        "negative" | "neg" | "-1" => "negative",
        "neutral" | "neu" | "0" => "neutral",
        "positive" | "pos" | "1" => "positive",
        _ => return None,
    };
    Some(label.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meld_and_text_files() {
        let dir = std::env::temp_dir().join(format!("eval-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let meld = dir.join("dev.csv");
        std::fs::write(
            &meld,
            "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n\
             1,\"Oh, really?\",Ross,surprise,positive,0,3\n2,Fine.,Rachel,neutral,neutral,1,0\n",
        )
        .unwrap();
        let (kind, items) = load(&meld, None).unwrap();
        assert_eq!(kind, DataKind::Meld);
        assert_eq!(items[0].id, "dia0_utt3");
        assert_eq!(items[0].text, "Oh, really?");
        assert_eq!(items[0].clip, Some(dir.join("dia0_utt3.mp4")));
        let tsv = dir.join("s.tsv");
        std::fs::write(&tsv, "text\temotion\tsentiment\nI am glad.\thappy\tpos\n").unwrap();
        let (kind, items) = load(&tsv, None).unwrap();
        assert_eq!(kind, DataKind::Text);
        assert_eq!(items[0].emotion.as_deref(), Some("joy"));
        assert_eq!(items[0].sentiment.as_deref(), Some("positive"));
        std::fs::write(&tsv, "text\temotion\nI am glad.\tbliss\n").unwrap();
        assert!(load(&tsv, None).unwrap_err().0.contains("bliss"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
