//! The `emotionpublish` GStreamer element (a passthrough BaseTransform): see the
//! SECTION documentation in `imp.rs`.

use gst::glib;
use gst::prelude::*;

mod imp;

pub(crate) static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "emotionpublish",
        gst::DebugColorFlags::empty(),
        Some("Publishes emotion results to a file or an MQTT broker"),
    )
});

glib::wrapper! {
    /// The `emotionpublish` element.
    pub struct EmotionPublish(ObjectSubclass<imp::EmotionPublish>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Where `emotionpublish` sends records (`method`).
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstEmotionPublishMethod")]
pub enum Method {
    /// To `file-path` (or stdout).
    #[default]
    #[enum_value(
        name = "File: records to file-path (\"stdout\" allowed)",
        nick = "file"
    )]
    File = 0,
    /// To an MQTT broker at `address`, topic `topic`.
    #[enum_value(
        name = "MQTT: records to the broker at address, on topic",
        nick = "mqtt"
    )]
    Mqtt = 1,
}

/// How records are laid out in a file (`file-format`).
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstEmotionPublishFileFormat")]
pub enum FileFormat {
    /// One JSON object per line.
    #[default]
    #[enum_value(name = "JSON Lines: one record per line", nick = "json-lines")]
    JsonLines = 0,
    /// The file is one JSON array.
    #[enum_value(name = "JSON: the whole file is one array of records", nick = "json")]
    Json = 1,
}

/// Registers `emotionpublish` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "emotionpublish",
        gst::Rank::NONE,
        EmotionPublish::static_type(),
    )
}
