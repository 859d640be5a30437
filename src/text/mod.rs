//! Text → model inputs: a `tokenizer.json` (the Hugging Face `tokenizers` format)
//! applied with a maximum length, padding and truncation, giving the `input_ids` and
//! `attention_mask` a text encoder takes — what `tokenizer(text, max_length=N,
//! padding="max_length", truncation=True)` gives in Python.

pub mod vader;

use std::path::Path;

use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

/// Why text could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The tokenizer file could not be read or parsed.
    #[error("{path}: cannot load the tokenizer: {reason}")]
    Load {
        /// The tokenizer.json path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The tokenizer has no padding token to pad with.
    #[error("the tokenizer defines no padding token (looked for {0:?}); set one in tokenizer.json")]
    NoPadToken(String),
    /// A setting is out of range.
    #[error("text max_length must be at least 2 (for the special tokens), got {0}")]
    MaxLength(usize),
    /// Tokenizing failed.
    #[error("tokenizing failed: {0}")]
    Encode(String),
}

/// Token ids and mask for one text, as int64 like PyTorch expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextInputs {
    /// Token ids, `max_length` of them when padding to the maximum length.
    pub input_ids: Vec<i64>,
    /// 1 for real tokens (special tokens included), 0 for padding.
    pub attention_mask: Vec<i64>,
}

impl TextInputs {
    /// Number of real (non-padding) tokens, counted from the attention mask.
    pub fn real_tokens(&self) -> usize {
        self.attention_mask.iter().filter(|&&m| m != 0).count()
    }
}

/// A tokenizer configured with a bundle's text settings.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_length: usize,
    pad_id: i64,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder")
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

impl TextEncoder {
    /// Loads `tokenizer.json`; texts are truncated to `max_length` tokens and, when
    /// `pad_to_max_length`, padded to exactly that many.
    pub fn from_file(
        path: &Path,
        max_length: usize,
        pad_to_max_length: bool,
    ) -> Result<Self, TextError> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| TextError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::new(tokenizer, max_length, pad_to_max_length)
    }

    /// Configures `tokenizer` (its own padding/truncation settings are replaced).
    pub fn new(
        mut tokenizer: Tokenizer,
        max_length: usize,
        pad_to_max_length: bool,
    ) -> Result<Self, TextError> {
        if max_length < 2 {
            return Err(TextError::MaxLength(max_length));
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| TextError::Encode(e.to_string()))?;
        // Keep the file's pad token when it has one, else BERT's "[PAD]".
        let pad_token = tokenizer
            .get_padding()
            .map(|p| p.pad_token.clone())
            .unwrap_or_else(|| "[PAD]".to_string());
        let pad_id = tokenizer.token_to_id(&pad_token);
        if pad_to_max_length {
            let pad_id = pad_id.ok_or_else(|| TextError::NoPadToken(pad_token.clone()))?;
            tokenizer.with_padding(Some(PaddingParams {
                strategy: PaddingStrategy::Fixed(max_length),
                direction: PaddingDirection::Right,
                pad_to_multiple_of: None,
                pad_id,
                pad_type_id: 0,
                pad_token,
            }));
        } else {
            tokenizer.with_padding(None);
        }
        Ok(Self {
            tokenizer,
            max_length,
            pad_id: pad_id.unwrap_or(0) as i64,
        })
    }

    /// The padding token's id (0 when the tokenizer defines none).
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    /// Maximum number of tokens.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Vocabulary size, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Tokenizes `text` with special tokens ([CLS] … [SEP] for BERT).
    pub fn encode(&self, text: &str) -> Result<TextInputs, TextError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| TextError::Encode(e.to_string()))?;
        Ok(TextInputs {
            input_ids: enc.get_ids().iter().map(|&i| i as i64).collect(),
            attention_mask: enc.get_attention_mask().iter().map(|&m| m as i64).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::bert::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::template::TemplateProcessing;

    use super::*;

    /// A small BERT-style tokenizer written to a real tokenizer.json.
    fn bert_like(dir: &Path) -> std::path::PathBuf {
        let words = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "i", "am", "so", "happy", "today", "!", "hap",
            "##py", "cafe",
        ];
        let vocab_path = dir.join("vocab.txt");
        std::fs::write(&vocab_path, words.join("\n")).unwrap();
        let wp = WordPiece::from_file(&vocab_path.display().to_string())
            .unk_token("[UNK]".into())
            .build()
            .unwrap();
        let mut tok = Tokenizer::new(wp);
        tok.with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
            .unwrap();
        tok.with_pre_tokenizer(Some(BertPreTokenizer));
        tok.with_post_processor(Some(
            TemplateProcessing::builder()
                .try_single("[CLS] $A [SEP]")
                .unwrap()
                .special_tokens(vec![("[CLS]", 2), ("[SEP]", 3)])
                .build()
                .unwrap(),
        ));
        let path = dir.join("tokenizer.json");
        tok.save(&path, false).unwrap();
        path
    }

    /// A folder of this test's own (tests run in parallel).
    fn tmp(test: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("gst-emotion-text-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn pads_to_max_length_with_mask() {
        let enc = TextEncoder::from_file(&bert_like(&tmp("pad")), 8, true).unwrap();
        let t = enc.encode("I am so HAPPY today!").unwrap();
        // Lower-cased; [CLS] i am so happy today ! [SEP] fills all 8.
        assert_eq!(t.input_ids, vec![2, 4, 5, 6, 7, 8, 9, 3]);
        assert_eq!(t.real_tokens(), 8);
        let t = enc.encode("Café").unwrap();
        // Accents stripped: "cafe"; then padding.
        assert_eq!(t.input_ids, vec![2, 12, 3, 0, 0, 0, 0, 0]);
        assert_eq!(t.attention_mask, vec![1, 1, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn truncates_keeping_special_tokens() {
        let enc = TextEncoder::from_file(&bert_like(&tmp("truncate")), 4, true).unwrap();
        let t = enc.encode("i am so happy today").unwrap();
        assert_eq!(t.input_ids, vec![2, 4, 5, 3]);
    }

    #[test]
    fn without_padding_and_bad_settings() {
        let enc = TextEncoder::from_file(&bert_like(&tmp("nopad")), 16, false).unwrap();
        assert_eq!(enc.encode("so happy").unwrap().input_ids.len(), 4);
        assert!(matches!(
            TextEncoder::from_file(&bert_like(&tmp("bad")), 1, true),
            Err(TextError::MaxLength(1))
        ));
        let err = TextEncoder::from_file(Path::new("/nonexistent/tokenizer.json"), 8, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/tokenizer.json"), "{err}");
    }
}
