//! Any text as bundle.toml: parsing and validation return an error or a manifest,
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz/bundle.toml");
    if let Ok(m) = gst_emotion::bundle::Manifest::parse(text, path) {
        let _ = m.validate(path);
    }
});
