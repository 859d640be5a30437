//! The GStreamer plugin `emotion` (libgstemotion.so): registers the `emotionsense` and
//! `emotionpublish` elements and the `EmotionMeta` meta implemented in the
//! `gst-emotion` crate.

use gst::glib;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst_emotion::plugin_init(plugin)
}

gst::plugin_define!(
    emotion,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://example.invalid/gst-emotion",
    env!("BUILD_REL_DATE")
);
