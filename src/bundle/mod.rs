//! Model bundles: a folder with `bundle.toml` (the manifest), TorchScript model
//! file(s), a `tokenizer.json` and a model card. The manifest says everything the
//! pipeline needs — forward arguments, outputs, labels, and how every input is
//! preprocessed — so nothing is hard-coded for one model. docs/bundles.md documents
//! the format.
//!
//! Loading parses and validates the manifest and checks the referenced files; errors
//! name the file and the field at fault. Running the model is [`crate::infer`]'s job.

mod manifest;
mod validate;

use std::path::{Path, PathBuf};

pub use manifest::{
    Between, ChannelOrder, CropMode, FORMAT_VERSION, FaceFill, FaceFusion, FaceSelect,
    FaceSequenceSpec, FrameDtype, FrameLayout, FusionKind, FusionSpec, HeadSpec, InputSpec,
    Manifest, MelNormalize, MelSpec, ModelSpec, SentimentFusion, TextFusion, TextPadding, TextSpec,
    VideoSpec, WindowDefaults,
};

use crate::media::{MelConfig, MelSpectrogram};
use crate::text::TextEncoder;

/// The manifest's file name inside a bundle folder.
pub const MANIFEST: &str = "bundle.toml";

/// Folder name of the default bundle under `$GST_EMOTION_CACHE/bundles/` (the number
/// follows models/build_default.py's BUILD_VERSION).
pub const DEFAULT_BUNDLE_DIR: &str = "default-v2";

/// Folder name of the accurate bundle (`scripts/setup --accurate`) under
/// `$GST_EMOTION_CACHE/bundles/`.
pub const ACCURATE_BUNDLE_DIR: &str = "accurate-v1";

/// Where scripts/setup puts the bundle folder `dir`:
/// `$GST_EMOTION_CACHE/bundles/DIR` (default `~/.cache/gst-emotion/...`).
fn setup_bundle_path(dir: &str) -> Option<PathBuf> {
    crate::paths::cache_dir().map(|d| d.join("bundles").join(dir))
}

/// A bundle as users choose it (`--bundle`, the element's `bundle` property):
/// `default`, `accurate`, `none` or a folder. Parsed once ([`str::parse`] never
/// fails: anything else is a folder, checked when it is loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleChoice {
    /// The default bundle scripts/setup builds (MiniLM words: fast enough for many
    /// live cameras).
    Default,
    /// The accurate bundle `scripts/setup --accurate` builds: the default bundle's
    /// parts with the larger MPNet sentence encoder (more often right about the
    /// words, ~4x their cost).
    Accurate,
    /// No model: windows carry measurements and transcripts only.
    None,
    /// A bundle folder.
    Folder(PathBuf),
}

impl std::str::FromStr for BundleChoice {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "default" => Self::Default,
            "accurate" => Self::Accurate,
            "none" => Self::None,
            folder => Self::Folder(folder.into()),
        })
    }
}

impl std::fmt::Display for BundleChoice {
    /// As given: `default`, `accurate`, `none` or the folder.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Accurate => f.write_str("accurate"),
            Self::None => f.write_str("none"),
            Self::Folder(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl BundleChoice {
    /// `setting` parsed (anything but `default`, `accurate` and `none` is a folder).
    pub fn parse(setting: &str) -> Self {
        match setting.parse() {
            Ok(choice) => choice,
            Err(never) => match never {},
        }
    }

    /// The folder to load: the default or accurate bundle's (it must be built) or
    /// the one given; `none` has none (an error saying so).
    pub fn folder(&self) -> Result<PathBuf, BundleError> {
        let (dir, build) = match self {
            Self::None => {
                return Err(BundleError::Io {
                    path: "none".into(),
                    reason: "no bundle was chosen".into(),
                });
            }
            Self::Folder(dir) => return Ok(dir.clone()),
            Self::Default => (
                DEFAULT_BUNDLE_DIR,
                "run scripts/setup (or models/build_default.py --out this folder)",
            ),
            Self::Accurate => (
                ACCURATE_BUNDLE_DIR,
                "run scripts/setup --accurate (or models/build_default.py --encoder mpnet \
                 --out this folder)",
            ),
        };
        match setup_bundle_path(dir) {
            Some(p) if p.join(MANIFEST).is_file() => Ok(p),
            Some(p) => Err(BundleError::Io {
                path: p.display().to_string(),
                reason: format!("the {self} bundle is not built: {build}"),
            }),
            None => Err(BundleError::Io {
                path: self.to_string(),
                reason: "cannot locate the cache folder: set GST_EMOTION_CACHE or HOME".into(),
            }),
        }
    }

    /// The default bundle, if scripts/setup built it; else no model (the element's
    /// and `watch`'s choice when none is given).
    pub fn default_if_built() -> Self {
        if Self::Default.folder().is_ok() {
            Self::Default
        } else {
            Self::None
        }
    }

    /// For files (`analyze`, `annotate`, `eval`, `serve`): the accurate bundle when
    /// it is built — no live deadline to keep, so the better words are worth their
    /// cost — else the default bundle.
    pub fn for_files() -> Self {
        if Self::Accurate.folder().is_ok() {
            Self::Accurate
        } else {
            Self::Default
        }
    }
}

/// Why a bundle could not be loaded. The message names the file and field at fault.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file is missing or unreadable.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The manifest is not valid TOML or does not match the format.
    #[error("{path}: {reason}")]
    Parse {
        /// The manifest file.
        path: String,
        /// The parser's message (with line and column).
        reason: String,
    },
    /// A field has a value the pipeline cannot use.
    #[error("{path}: {field}: {reason}")]
    Invalid {
        /// The manifest file.
        path: String,
        /// Dotted path of the field.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The model does not behave as the manifest says (found at load/warm-up).
    #[error("{path}: {reason}")]
    Model {
        /// The model file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// A validated bundle with its preprocessing ready to use.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle folder.
    pub dir: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The text encoder, when a model takes text.
    pub text: Option<TextEncoder>,
    /// One mel transform per mel input, in `manifest.inputs` order.
    pub mels: Vec<(String, MelSpectrogram)>,
    /// The VADER analyser of a `[fusion.sentiment]` stage.
    pub vader: Option<crate::text::vader::Vader>,
}

impl Bundle {
    /// Reads, validates and prepares the bundle in `dir`.
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| BundleError::Io {
            path: path.display().to_string(),
            reason: format!("cannot read the bundle manifest: {e}"),
        })?;
        let manifest = Manifest::parse(&text, &path)?;
        manifest.validate(&path)?;
        verify_checksums(dir, &manifest)?;
        for model in &manifest.models {
            let variants = model.precision_files.values();
            for file in std::iter::once(&model.file)
                .chain(&model.cpu_file)
                .chain(variants)
            {
                let file = dir.join(file);
                if !file.is_file() {
                    return Err(BundleError::Io {
                        path: file.display().to_string(),
                        reason: format!("model file of models.{} not found", model.name),
                    });
                }
            }
        }
        let text = match &manifest.text {
            Some(t) => {
                let file = dir.join(&t.tokenizer);
                Some(
                    TextEncoder::from_file(
                        &file,
                        t.max_length,
                        t.padding == TextPadding::MaxLength,
                    )
                    .map_err(|e| BundleError::Invalid {
                        path: path.display().to_string(),
                        field: "text.tokenizer".into(),
                        reason: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        let mut mels = Vec::new();
        for (name, spec) in &manifest.inputs {
            if let InputSpec::Mel(m) = spec {
                let t = MelSpectrogram::new(m.config()).map_err(|reason| BundleError::Invalid {
                    path: path.display().to_string(),
                    field: format!("inputs.{name}"),
                    reason: reason.0,
                })?;
                mels.push((name.clone(), t));
            }
        }
        let vader = match manifest.fusion.as_ref().and_then(|f| f.sentiment.as_ref()) {
            Some(s) => Some(
                crate::text::vader::Vader::from_file(&dir.join(&s.lexicon)).map_err(|reason| {
                    BundleError::Invalid {
                        path: path.display().to_string(),
                        field: "fusion.sentiment.lexicon".into(),
                        reason: reason.to_string(),
                    }
                })?,
            ),
            None => None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            text,
            mels,
            vader,
        })
    }

    /// The video input's sampling, if a model takes frames.
    pub fn video(&self) -> Option<&VideoSpec> {
        self.manifest.inputs.values().find_map(|i| match i {
            InputSpec::Video(v) => Some(v),
            _ => None,
        })
    }

    /// The mel transform of input `name`.
    pub fn mel(&self, name: &str) -> Option<&MelSpectrogram> {
        self.mels.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }

    /// Whether this is a late-fusion bundle (face/text/sentiment branches).
    pub fn is_fusion(&self) -> bool {
        self.manifest.fusion.is_some()
    }

    /// Index of the model named `name`.
    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.manifest.models.iter().position(|m| m.name == name)
    }

    /// The TorchScript file of model `index` to load for `device`.
    pub fn model_file(&self, index: usize, device: tch::Device) -> PathBuf {
        let model = &self.manifest.models[index];
        let file = match (&model.cpu_file, device) {
            (Some(cpu), tch::Device::Cpu) => cpu,
            _ => &model.file,
        };
        self.dir.join(file)
    }

    /// Sample rate the audio must have (from the first mel input), if any.
    pub fn sample_rate(&self) -> Option<u32> {
        self.mels.first().map(|(_, m)| m.config().sample_rate)
    }
}

/// SHA-256 of a file, as lowercase hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Every file the manifest lists under `[sha256]` exists and has that digest.
fn verify_checksums(dir: &Path, manifest: &Manifest) -> Result<(), BundleError> {
    for (name, want) in &manifest.sha256 {
        if name.contains("..") || Path::new(name).is_absolute() {
            return Err(BundleError::Invalid {
                path: dir.join(MANIFEST).display().to_string(),
                field: format!("sha256.{name}"),
                reason: "must be a path inside the bundle".into(),
            });
        }
        let file = dir.join(name);
        let found = file_sha256(&file).map_err(|e| BundleError::Io {
            path: file.display().to_string(),
            reason: format!("listed in [sha256] but unreadable: {e}"),
        })?;
        if !found.eq_ignore_ascii_case(want.trim()) {
            return Err(BundleError::Io {
                path: file.display().to_string(),
                reason: format!(
                    "SHA-256 {found} differs from the manifest's {want}: the file is corrupt \
                     or partly copied"
                ),
            });
        }
    }
    Ok(())
}

impl MelSpec {
    /// The transform parameters.
    pub fn config(&self) -> MelConfig {
        let mut c =
            MelConfig::torchaudio(self.sample_rate, self.n_fft, self.hop_length, self.n_mels);
        c.win_length = self.win_length.unwrap_or(self.n_fft);
        c.f_min = self.f_min;
        c.f_max = self.f_max.unwrap_or(self.sample_rate as f64 / 2.0);
        c.power = self.power;
        c.center = self.center;
        c.pad_mode = self.pad_mode;
        c.mel_scale = self.mel_scale;
        c.norm = self.norm;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_choice_is_parsed_once_and_shown_as_given() {
        for (text, choice) in [
            ("default", BundleChoice::Default),
            ("accurate", BundleChoice::Accurate),
            ("none", BundleChoice::None),
            (
                "models/my bundle",
                BundleChoice::Folder("models/my bundle".into()),
            ),
        ] {
            assert_eq!(BundleChoice::parse(text), choice);
            assert_eq!(choice.to_string(), text);
        }
        assert!(BundleChoice::None.folder().is_err());
        assert_eq!(
            BundleChoice::parse("/b").folder().unwrap(),
            PathBuf::from("/b")
        );
    }
}
