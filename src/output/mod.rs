//! What a finished window reports, and every form it is written in.
//!
//! [`WindowResult`] is typed from the model to every writer: the `emotion` GstStructure
//! of the bus message and `EmotionMeta` (`structure.rs`, documented in
//! docs/metadata.md), JSON Lines records (`jsonl`), CSV, WebVTT, the SVG timeline, the
//! reference service's JSON, the debug dumps and the on-video overlay. A new output
//! format is a new file here taking `&WindowResult`.

pub mod csv;
pub mod dump;
pub mod files;
pub mod jsonl;
pub mod npy;
pub mod overlay;
pub mod reference;
mod result;
pub mod store;
mod structure;
pub mod subtitles;
pub mod timeline;
pub mod vtt;

pub use result::{
    FaceReport, FrameProbs, FusionDetails, FusionFlag, HeadResult, Prediction, TimedWord,
    TranscriptInfo, WindowResult, argmax, softmax, softmax_f64,
};
pub use structure::StructureError;

/// Name of the GstStructure carried by the `emotion` element message and `EmotionMeta`.
pub const STRUCTURE_NAME: &str = "emotion";

/// Name under which the `EmotionMeta` GstCustomMeta is registered.
pub const META_NAME: &str = "EmotionMeta";
