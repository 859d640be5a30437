//! Validation of a parsed `bundle.toml`: [`Manifest::validate`] checks the sections
//! that relate to each other, each spec type checks its own fields. Every error
//! names the field at fault (dotted, as in the file) and why.

use std::collections::HashSet;
use std::path::Path;

use super::BundleError;
use super::manifest::*;

/// A field at fault (relative to the section being checked) and why.
pub(super) struct Fault {
    field: String,
    reason: String,
}

/// The outcome of checking one section.
type Checked = Result<(), Fault>;

fn fault(field: impl Into<String>, reason: impl Into<String>) -> Fault {
    Fault {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Fault {
    /// The same fault, its field inside section `prefix`.
    fn within(self, prefix: &str) -> Self {
        let field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        Self { field, ..self }
    }
}

impl Manifest {
    /// Checks every field the pipeline relies on.
    pub fn validate(&self, path: &Path) -> Result<(), BundleError> {
        self.check().map_err(|f| BundleError::Invalid {
            path: path.display().to_string(),
            field: f.field,
            reason: f.reason,
        })
    }

    fn check(&self) -> Checked {
        if self.format != FORMAT_VERSION {
            return Err(fault(
                "format",
                format!(
                    "format {} is not supported (this build reads {FORMAT_VERSION})",
                    self.format
                ),
            ));
        }
        self.check_models()?;
        self.check_inputs()?;
        if self.heads.is_empty() {
            return Err(fault("heads", "at least one head is required"));
        }
        for head in &self.heads {
            head.check(self)
                .map_err(|f| f.within(&format!("heads.{}", head.name)))?;
        }
        if let Some(t) = &self.text {
            t.check().map_err(|f| f.within("text"))?;
        }
        if let Some(f) = &self.fusion {
            if self.faces.is_some() {
                return Err(fault(
                    "faces",
                    "a fusion bundle's faces are set in [fusion.face]",
                ));
            }
            if let Some(h) = self.heads.iter().find(|h| h.per_frame) {
                return Err(fault(
                    format!("heads.{}.per_frame", h.name),
                    "late fusion answers per window, not per frame",
                ));
            }
            f.check(self).map_err(|f| f.within("fusion"))?;
        } else {
            self.check_single()?;
        }
        self.window.check().map_err(|f| f.within("window"))
    }

    /// The models: at least one; several only with `[fusion]` (or a face detector);
    /// each one's forward arguments are inputs.
    fn check_models(&self) -> Checked {
        if self.models.is_empty() {
            return Err(fault("models", "at least one model is required"));
        }
        // Besides the model, a single-model bundle may hold only its face detector.
        let detector = self.faces.as_ref().map_or(0, |f| f.detector.len());
        if self.models.len() > 1 + detector && self.fusion.is_none() {
            return Err(fault(
                "models",
                "several models need a [fusion] section saying how they combine (or, for \
                 a face detector, a [faces] section naming it)",
            ));
        }
        Ok(())
    }

    /// Each input, then the inputs together, then what the models feed from them.
    fn check_inputs(&self) -> Checked {
        for (name, spec) in &self.inputs {
            spec.check(self)
                .map_err(|f| f.within(&format!("inputs.{name}")))?;
        }
        let videos = self
            .inputs
            .values()
            .filter(|i| matches!(i, InputSpec::Video(_)));
        if videos.count() > 1 {
            return Err(fault("inputs", "at most one video input"));
        }
        let mel_rates: HashSet<u32> = self
            .inputs
            .values()
            .filter_map(|i| match i {
                InputSpec::Mel(m) => Some(m.sample_rate),
                _ => None,
            })
            .collect();
        if mel_rates.len() > 1 {
            return Err(fault("inputs", "all mel inputs must share one sample_rate"));
        }
        let detectors: Vec<&String> = self.faces.iter().flat_map(|f| &f.detector).collect();
        for model in &self.models {
            let field = format!("models.{}.forward", model.name);
            if model.forward.is_empty()
                && self.fusion.is_none()
                && !detectors.contains(&&model.name)
            {
                return Err(fault(field, "lists no inputs"));
            }
            if let Some(p) = model.precision_files.keys().find(|p| {
                !matches!(
                    p.parse::<crate::infer::Precision>(),
                    Ok(crate::infer::Precision::Bf16 | crate::infer::Precision::Fp16)
                )
            }) {
                return Err(fault(
                    format!("models.{}.precision_files", model.name),
                    format!("{p:?} is not a reduced precision: use bf16 or fp16"),
                ));
            }
            if let Some(arg) = model.forward.iter().find(|a| !self.inputs.contains_key(*a)) {
                return Err(fault(
                    field,
                    format!("{arg:?} is not one of the [inputs.*] names"),
                ));
            }
        }
        Ok(())
    }

    /// Rules of a bundle without `[fusion]`: one model makes every head; a `[faces]`
    /// section names its detector and a `crop = "face"` video input the model takes.
    fn check_single(&self) -> Checked {
        let main = &self.models[self.main_model()].name;
        if let Some(head) = self.heads.iter().find(|h| &h.model != main) {
            return Err(fault(
                format!("heads.{}.model", head.name),
                format!("every head of a single-model bundle comes from {main:?}"),
            ));
        }
        let video = self
            .inputs
            .values()
            .any(|i| matches!(i, InputSpec::Video(_)));
        if self.heads.iter().any(|h| h.per_frame) && !video {
            return Err(fault(
                "heads.per_frame",
                "per-frame heads need a video input (the frames they answer for)",
            ));
        }
        match &self.faces {
            Some(f) => f.check(self, main).map_err(|f| f.within("faces")),
            None => Ok(()),
        }
    }

    /// `name` is one of the `[[models]]`.
    fn has_model(&self, field: &str, name: &str) -> Checked {
        if self.models.iter().any(|m| m.name == name) {
            Ok(())
        } else {
            Err(fault(
                field,
                format!("{name:?} is not one of the [[models]] names"),
            ))
        }
    }

    /// Input `name` is a video input cropped to faces.
    fn is_face_input(&self, field: &str, name: &str) -> Checked {
        match self.inputs.get(name) {
            Some(InputSpec::Video(v)) if v.crop == CropMode::Face => Ok(()),
            _ => Err(fault(
                field,
                format!("{name:?} must name a video input with crop = \"face\""),
            )),
        }
    }
}

impl InputSpec {
    fn check(&self, m: &Manifest) -> Checked {
        match self {
            InputSpec::Video(v) => v.check(m.fusion.is_some() || m.faces.is_some()),
            InputSpec::Mel(mel) => {
                if mel.frames == Some(0) {
                    return Err(fault("frames", "must be > 0"));
                }
                mel.config().validate().map_err(|r| fault("", r.0))
            }
            InputSpec::TextIds | InputSpec::TextMask if m.text.is_none() => {
                Err(fault("kind", "text inputs need a [text] section"))
            }
            InputSpec::TextIds | InputSpec::TextMask => Ok(()),
        }
    }
}

impl VideoSpec {
    /// `faces`: the bundle has a face detector (`[faces]` or `[fusion.face]`).
    fn check(&self, faces: bool) -> Checked {
        if self.frames == 0 || self.frames > 1024 {
            return Err(fault("frames", "must be 1..=1024"));
        }
        if !(8..=4096).contains(&self.width) || !(8..=4096).contains(&self.height) {
            return Err(fault("width", "width and height must be 8..=4096"));
        }
        let c = self.channel_order.channels();
        if self.mean.len() != c {
            return Err(fault("mean", format!("needs {c} value(s)")));
        }
        if self.dtype == FrameDtype::Uint8
            && (self.scale != 1.0
                || self.mean.iter().any(|m| *m != 0.0)
                || self.std.iter().any(|s| *s != 1.0))
        {
            return Err(fault(
                "dtype",
                "uint8 frames are raw 0-255 values: scale must be 1, mean 0 and std 1",
            ));
        }
        if self.std.len() != c || self.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(fault("std", format!("needs {c} finite non-zero value(s)")));
        }
        if !self.scale.is_finite() || self.scale == 0.0 {
            return Err(fault("scale", "must be finite and non-zero"));
        }
        if self.crop == CropMode::Face && !faces {
            return Err(fault(
                "crop",
                "face crops need a [faces] section (or a [fusion.face] stage); add one or \
                 use crop = \"full\"",
            ));
        }
        if self.crop == CropMode::Full && self.detect_size.is_some() {
            return Err(fault("detect_size", "only applies to crop = \"face\""));
        }
        if !(64..=4096).contains(&self.detect_size()) {
            return Err(fault("detect_size", "must be 64..=4096"));
        }
        Ok(())
    }
}

impl HeadSpec {
    fn check(&self, m: &Manifest) -> Checked {
        let name_ok = |c: char| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit();
        if self.name.is_empty() || !self.name.chars().all(name_ok) {
            return Err(fault("name", "use lowercase letters, digits and '-'"));
        }
        if self.labels.len() < 2 {
            return Err(fault("labels", "needs at least 2 labels"));
        }
        if m.fusion.is_some() {
            if self.model != "fusion" {
                return Err(fault(
                    "model",
                    "heads of a fusion bundle come from \"fusion\"",
                ));
            }
        } else if !m.models.iter().any(|model| model.name == self.model) {
            return Err(fault(
                "model",
                format!("{:?} is not a model name", self.model),
            ));
        }
        if self.output_key.is_some() && self.output_index.is_some() {
            return Err(fault(
                "output_key",
                "give output_key or output_index, not both",
            ));
        }
        Ok(())
    }
}

impl TextSpec {
    fn check(&self) -> Checked {
        if self.max_length < 2 || self.max_length > 4096 {
            return Err(fault("max_length", "must be 2..=4096"));
        }
        if !self.truncation {
            return Err(fault(
                "truncation",
                "must be true (longer text cannot be fed)",
            ));
        }
        Ok(())
    }
}

impl WindowDefaults {
    fn check(&self) -> Checked {
        let ok = self.length > 0.0
            && self.hop > 0.0
            && self.min_length >= 0.0
            && self.min_length <= self.length;
        if !ok {
            return Err(fault(
                "",
                "need length > 0, hop > 0 and 0 <= min_length <= length",
            ));
        }
        Ok(())
    }
}

/// The MTCNN settings shared by `[fusion.face]` and `[faces]`.
fn check_detector(
    thresholds: &[f64],
    pyramid_factor: f64,
    min_face: f64,
    detect_every: usize,
    margin: f64,
) -> Checked {
    if thresholds.len() != 3 || thresholds.iter().any(|t| !(0.0..1.0).contains(t)) {
        return Err(fault("thresholds", "needs 3 values in [0, 1)"));
    }
    if !(0.1..=0.95).contains(&pyramid_factor) {
        return Err(fault("pyramid_factor", "must be in [0.1, 0.95]"));
    }
    if !(12.0..=4096.0).contains(&min_face) {
        return Err(fault("min_face", "must be 12..=4096 pixels"));
    }
    if detect_every == 0 {
        return Err(fault("detect_every", "must be at least 1"));
    }
    if !(0.0..=1.0).contains(&margin) {
        return Err(fault("margin", "must be in [0, 1]"));
    }
    Ok(())
}

/// The three MTCNN models named by `detector` are among the bundle's models.
fn check_detector_models(m: &Manifest, detector: &[String]) -> Checked {
    if detector.len() != 3 {
        return Err(fault(
            "detector",
            "name the three MTCNN models (P-Net, R-Net, O-Net)",
        ));
    }
    detector.iter().try_for_each(|d| m.has_model("detector", d))
}

/// `w` is usable as a weight.
fn check_weight(field: &str, w: f64) -> Checked {
    if w.is_finite() && w >= 0.0 {
        Ok(())
    } else {
        Err(fault(field, "must be a finite number >= 0"))
    }
}

impl FaceSequenceSpec {
    /// `main`: the model the heads come from.
    fn check(&self, m: &Manifest, main: &str) -> Checked {
        if self.detector.len() != 3 {
            return Err(fault(
                "detector",
                "name the three MTCNN models (P-Net, R-Net, O-Net)",
            ));
        }
        for d in &self.detector {
            m.has_model("detector", d)?;
            if d == main {
                return Err(fault(
                    "detector",
                    format!("{d:?} is the model the heads come from"),
                ));
            }
        }
        m.is_face_input("input", &self.input)?;
        check_detector(
            &self.thresholds,
            self.pyramid_factor,
            self.min_face,
            self.detect_every,
            self.margin,
        )?;
        if !(1..=64).contains(&self.max_faces) {
            return Err(fault("max_faces", "must be 1..=64"));
        }
        Ok(())
    }
}

impl FusionSpec {
    fn check(&self, m: &Manifest) -> Checked {
        if !(0.0..=1.0).contains(&self.empty_confidence) {
            return Err(fault("empty_confidence", "must be in [0, 1]"));
        }
        if let Some(head) = m
            .heads
            .iter()
            .find(|h| h.name != "emotion" && h.name != "sentiment")
        {
            return Err(fault(
                "kind",
                format!(
                    "late fusion makes the heads \"emotion\" and \"sentiment\", not {:?}",
                    head.name
                ),
            ));
        }
        let emotion = m.head("emotion");
        if let Some(face) = &self.face {
            face.check(m, emotion).map_err(|f| f.within("face"))?;
        }
        if let Some(text) = &self.text {
            text.check(m, emotion).map_err(|f| f.within("text"))?;
        }
        match (&self.sentiment, m.head("sentiment")) {
            (Some(s), head) => s
                .check(m, self, emotion, head)
                .map_err(|f| f.within("sentiment"))?,
            (None, Some(_)) => {
                return Err(fault(
                    "sentiment",
                    "heads.sentiment needs a [fusion.sentiment] section",
                ));
            }
            (None, None) => {}
        }
        if emotion.is_some() && self.face.is_none() && self.text.is_none() {
            return Err(fault(
                "face",
                "heads.emotion needs a [fusion.face] or [fusion.text] branch",
            ));
        }
        if emotion.is_some_and(|e| !e.labels.iter().any(|l| l == "neutral")) {
            return Err(fault("kind", "heads.emotion needs a \"neutral\" label"));
        }
        Ok(())
    }
}

impl FaceFusion {
    fn check(&self, m: &Manifest, emotion: Option<&HeadSpec>) -> Checked {
        check_detector_models(m, &self.detector)?;
        m.has_model("classifier", &self.classifier)?;
        m.is_face_input("input", &self.input)?;
        let n = self.labels.len();
        if n < 2 {
            return Err(fault("labels", "needs at least 2 labels"));
        }
        if self.maps_to.len() != n {
            return Err(fault(
                "maps_to",
                format!("needs {n} entries, one per label"),
            ));
        }
        let Some(e) = emotion else {
            return Err(fault(
                "maps_to",
                "the face branch needs a [[heads]] named emotion (maps_to names its labels)",
            ));
        };
        if let Some(l) = self.maps_to.iter().find(|l| !e.labels.contains(l)) {
            return Err(fault(
                "maps_to",
                format!("{l:?} is not a label of heads.emotion"),
            ));
        }
        if self.valence.len() != n || self.valence.iter().any(|v| !(-1.0..=1.0).contains(v)) {
            return Err(fault(
                "valence",
                format!("needs {n} values in [-1, 1], one per label"),
            ));
        }
        check_detector(
            &self.thresholds,
            self.pyramid_factor,
            self.min_face,
            self.detect_every,
            self.margin,
        )?;
        if self.max_faces == 0 {
            return Err(fault("max_faces", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.reliability) {
            return Err(fault("reliability", "must be in [0, 1]"));
        }
        check_weight("weight", self.weight)
    }
}

impl TextFusion {
    fn check(&self, m: &Manifest, emotion: Option<&HeadSpec>) -> Checked {
        m.has_model("encoder", &self.encoder)?;
        if m.text.is_none() {
            return Err(fault(
                "",
                "the text branch needs a [text] tokenizer section",
            ));
        }
        if self.prototypes.is_empty() && self.classifier.is_none() {
            return Err(fault(
                "prototypes",
                "give prototype sentences per label, or a classifier",
            ));
        }
        if let Some(c) = &self.classifier {
            m.has_model("classifier", c)?;
        }
        if !(0.0..=1.0).contains(&self.prototype_weight) {
            return Err(fault("prototype_weight", "must be in [0, 1]"));
        }
        let Some(e) = emotion else {
            return Err(fault(
                "prototypes",
                "the text branch needs a [[heads]] named emotion (its prototypes name its \
                 labels)",
            ));
        };
        for (label, sentences) in &self.prototypes {
            if !e.labels.contains(label) {
                return Err(fault(
                    "prototypes",
                    format!("{label:?} is not a label of heads.emotion"),
                ));
            }
            if sentences.is_empty() || sentences.iter().any(|s| s.trim().is_empty()) {
                return Err(fault(
                    format!("prototypes.{label}"),
                    "needs non-empty sentences",
                ));
            }
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(fault("temperature", "must be > 0"));
        }
        if !(self.calibration > 0.0 && self.calibration.is_finite()) {
            return Err(fault("calibration", "must be > 0"));
        }
        check_weight("weight", self.weight)
    }
}

impl SentimentFusion {
    /// `emotion`, `head`: the bundle's `emotion` and `sentiment` heads, if any.
    fn check(
        &self,
        m: &Manifest,
        fusion: &FusionSpec,
        emotion: Option<&HeadSpec>,
        head: Option<&HeadSpec>,
    ) -> Checked {
        if let Some(c) = &self.classifier {
            m.has_model("classifier", c)?;
            if fusion.text.is_none() {
                return Err(fault(
                    "classifier",
                    "needs the [fusion.text] branch (it reads the text embedding)",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.emotion_weight) {
            return Err(fault("emotion_weight", "must be in [0, 1]"));
        }
        if self.emotion_weight > 0.0 || self.consistent {
            let field = if self.consistent {
                "consistent"
            } else {
                "emotion_weight"
            };
            let e = emotion.ok_or_else(|| fault(field, "needs a [[heads]] named emotion"))?;
            for l in &e.labels {
                let given = self.emotion_sentiment.get(l).map(String::as_str);
                if !matches!(given, Some("negative" | "neutral" | "positive")) {
                    return Err(fault(
                        "emotion_sentiment",
                        format!("give {l:?} one of negative, neutral, positive"),
                    ));
                }
            }
        }
        check_weight("text_weight", self.text_weight)?;
        check_weight("face_weight", self.face_weight)?;
        if !(0.0..1.0).contains(&self.neutral_band) {
            return Err(fault("neutral_band", "must be in [0, 1)"));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(fault("temperature", "must be > 0"));
        }
        let Some(h) = head else {
            return Err(fault("", "needs a [[heads]] named sentiment"));
        };
        let mut labels = h.labels.clone();
        labels.sort();
        if labels != ["negative", "neutral", "positive"] {
            return Err(fault(
                "",
                "heads.sentiment must have the labels negative, neutral, positive",
            ));
        }
        Ok(())
    }
}
