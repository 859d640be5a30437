//! Building and running GStreamer pipelines, for every front end (`analyze`, `eval`,
//! `annotate`, `watch` and `serve`): `run` plays a file or URI through `emotionsense`
//! and reads its bus, `live` plays cameras, RTSP and fed streams with reconnection.
//! Pipelines are built from element factories with properties set on objects — input
//! (URIs, paths, names) never goes into a launch description. Also here: checked
//! `--set NAME=VALUE` properties, credentials removed from URLs, `%XX` decoding.

pub mod live;
pub mod run;

use url::Url;

/// The bundle a file command (`analyze`, `annotate`) runs: the one given, else the
/// accurate bundle when it is built ([`BundleChoice::for_files`]); `None` leaves the
/// element's default (the default bundle when built).
///
/// [`BundleChoice::for_files`]: crate::bundle::BundleChoice::for_files
pub fn file_bundle(
    choice: Option<&crate::bundle::BundleChoice>,
) -> Option<crate::bundle::BundleChoice> {
    use crate::bundle::BundleChoice;
    choice.cloned().or_else(|| {
        (BundleChoice::for_files() == BundleChoice::Accurate).then_some(BundleChoice::Accurate)
    })
}

/// Applies a `--bundle` choice to an `emotionsense`: a folder, "default" or "none" as
/// given; without a choice the element's own default (the default bundle when it is
/// installed).
pub fn apply_bundle(sense: &gst::Element, choice: Option<&crate::bundle::BundleChoice>) {
    use gst::prelude::*;
    if let Some(b) = choice {
        sense.set_property("bundle", b.to_string());
    }
}

/// Why a `--set NAME=VALUE` was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// Not `NAME=VALUE`.
    #[error("--set {0}: use NAME=VALUE")]
    Syntax(String),
    /// The element has no property of that name.
    #[error("--set {key}: {element} has no such property")]
    Unknown {
        /// The property name given.
        key: String,
        /// The element's factory name.
        element: String,
    },
    /// The value does not parse as the property's type.
    #[error("--set {key}={value}: not a valid {kind} ({blurb})")]
    Invalid {
        /// The property name.
        key: String,
        /// The value given.
        value: String,
        /// The property's type name.
        kind: String,
        /// The property's description.
        blurb: String,
    },
    /// The value is outside the property's range.
    #[error("--set {key}={value}: out of range ({blurb})")]
    OutOfRange {
        /// The property name.
        key: String,
        /// The value given.
        value: String,
        /// The property's description.
        blurb: String,
    },
}

/// Sets `--set NAME=VALUE` on `element`, refusing unknown properties, values that do
/// not parse and values out of the property's range (instead of GLib's warning and
/// silent clamping).
pub fn set_property_checked(element: &gst::Element, setting: &str) -> Result<(), SettingError> {
    use gst::glib;
    use gst::glib::translate::{ToGlibPtr, ToGlibPtrMut};
    use gst::prelude::*;
    let (k, v) = setting
        .split_once('=')
        .ok_or_else(|| SettingError::Syntax(setting.to_string()))?;
    let name = element
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    let pspec = element
        .find_property(k)
        .ok_or_else(|| SettingError::Unknown {
            key: k.to_string(),
            element: name,
        })?;
    let blurb = pspec.blurb().unwrap_or_default().to_string();
    let value = <glib::Value as gst::prelude::GstValueExt>::deserialize_with_pspec(v, &pspec)
        .map_err(|_| SettingError::Invalid {
            key: k.to_string(),
            value: v.to_string(),
            kind: pspec.value_type().name().to_string(),
            blurb: blurb.clone(),
        })?;
    let mut check = value.clone();
    // SAFETY: both pointers are valid for the call; validate only modifies `check`.
    let modified = unsafe {
        glib::gobject_ffi::g_param_value_validate(
            pspec.to_glib_none().0,
            check.to_glib_none_mut().0,
        )
    } != 0;
    if modified {
        return Err(SettingError::OutOfRange {
            key: k.to_string(),
            value: v.to_string(),
            blurb,
        });
    }
    element.set_property_from_value(k, &value);
    Ok(())
}

/// `url` with any user:password replaced by `***` (a URL that does not parse is
/// redacted by text: everything between `://` and the last `@` of its authority).
pub fn redact(url: &str) -> String {
    if let Ok(mut u) = Url::parse(url)
        && (!u.username().is_empty() || u.password().is_some())
    {
        let _ = u.set_password(None);
        let _ = u.set_username("***");
        // "***" is percent-encoded by the parser; show it plainly.
        return u.as_str().replacen("%2A%2A%2A@", "***@", 1);
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://***@{host}{path}");
        }
    }
    url.to_string()
}

/// Decodes `%XX` escapes of a URI path.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("/a/My%20clip.mp4"), "/a/My clip.mp4");
        // Escapes next to multi-byte characters (this panicked once).
        assert_eq!(percent_decode("/a/%é%aé%"), "/a/%é%aé%");
    }
}
