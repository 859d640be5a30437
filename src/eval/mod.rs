//! Measuring what a bundle gets right (`gst-emotion eval`): labelled data in, accuracy,
//! F1 per class, confusion matrices, word error rate and cost out. `metrics` computes
//! the numbers as scikit-learn does; `heatmap` draws confusion matrices; `data` reads
//! MELD-format CSVs and labelled text files; `speech` makes spoken clips of
//! sentences.

pub mod data;
pub mod heatmap;
pub mod metrics;
pub mod speech;
