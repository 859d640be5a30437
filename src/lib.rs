//! gst-emotion: emotion and sentiment recognition in live and recorded video.
//!
//! The crate is the engine (windowing, media preprocessing, inference, outputs), the
//! `emotionsense` and `emotionpublish` GStreamer elements built on it, and the
//! `gst-emotion` command line. The cdylib in `plugins/gstemotion` exposes the elements
//! to GStreamer as the plugin
//! `emotion`; applications and tests can register it in-process with
//! [`register_static`].

pub mod analyzer;
pub mod bundle;
pub mod cli;
pub mod element;
pub mod eval;
pub mod face;
pub mod infer;
pub mod media;
pub mod output;
pub mod parallel;
pub mod paths;
pub mod pipeline;
pub mod publish;
pub mod serve;
pub mod speculation;
pub mod speech;
pub mod text;
pub mod window;

use gst::glib;
use gst::glib::translate::{FromGlibPtrBorrow, IntoGlib};

/// This process's resident set size in kB (Linux `/proc/self/status`), for the memory
/// checks of tests and benchmarks; 0 when unknown.
pub fn resident_set_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Registers everything the `emotion` plugin provides: the `EmotionMeta` custom meta
/// and the `emotionsense` and `emotionpublish` elements.
pub fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    if !gst::meta::CustomMeta::is_registered(output::META_NAME) {
        gst::meta::CustomMeta::register(output::META_NAME, &[]);
    }
    element::register(plugin)?;
    publish::element::register(plugin)
}

/// Registers the `emotion` plugin with GStreamer inside this process, for
/// applications and tests that link the library instead of loading the .so.
/// Calling it more than once is harmless.
pub fn register_static() -> Result<(), glib::BoolError> {
    static RESULT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

    unsafe extern "C" fn init(plugin: *mut gst::ffi::GstPlugin) -> glib::ffi::gboolean {
        // SAFETY: GStreamer passes a valid plugin pointer for the duration of the call.
        let plugin = unsafe { gst::Plugin::from_glib_borrow(plugin) };
        match plugin_init(&plugin) {
            Ok(()) => true.into_glib(),
            Err(e) => {
                eprintln!("gst-emotion: plugin init failed: {e}");
                false.into_glib()
            }
        }
    }

    let ok = *RESULT.get_or_init(|| {
        // SAFETY: all strings are NUL-terminated statics; init has the expected signature.
        unsafe {
            gst::ffi::gst_plugin_register_static(
                1,
                22,
                c"emotion".as_ptr(),
                c"Emotion and sentiment recognition in video (face, voice, words)".as_ptr(),
                Some(init),
                concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
                c"MIT/X11".as_ptr(),
                c"gst-emotion".as_ptr(),
                c"gst-emotion".as_ptr(),
                c"https://example.invalid/gst-emotion".as_ptr(),
            ) != 0
        }
    });
    if ok {
        Ok(())
    } else {
        Err(glib::bool_error!("could not register the emotion plugin"))
    }
}
