//! Any text as a request's `video_path`: the URI and path checks of `serve` return an
//! error or an accepted source, never panic, and what they accept is safe — a remote
//! URL whose host is an address the policy allows (never a private one: the policy
//! here allows none), parsed the same way again from its own serialization, or a file
//! inside the allowed folder.
#![no_main]

use std::sync::OnceLock;

use gst_emotion::serve::net::{is_private, parse_remote};
use gst_emotion::serve::source::{MediaSpec, Policy};
use libfuzzer_sys::fuzz_target;

/// A folder with one allowed file, `media/a.mp4`, and one outside it.
fn policy() -> &'static (Policy, tokio::runtime::Runtime) {
    static P: OnceLock<(Policy, tokio::runtime::Runtime)> = OnceLock::new();
    P.get_or_init(|| {
        let root = std::env::temp_dir().join("gst-emotion-fuzz-policy");
        let media = root.join("media");
        std::fs::create_dir_all(&media).unwrap();
        std::fs::write(media.join("a.mp4"), b"x").unwrap();
        std::fs::write(root.join("secret.mp4"), b"x").unwrap();
        let _ = std::os::unix::fs::symlink(&root, media.join("up"));
        let policy = Policy {
            allow_dirs: vec![media.canonicalize().unwrap()],
            allow_remote: true,
            max_body: 1 << 20,
            min_upload_rate: 1,
            ..Policy::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (policy, rt)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (policy, rt) = policy();
    if let Ok(url) = parse_remote(text) {
        // What is accepted reads the same when parsed again.
        let again = parse_remote(url.as_str()).expect("a parsed URL parses again");
        assert_eq!(again.host(), url.host(), "{text:?}");
        assert_eq!(again.port_or_known_default(), url.port_or_known_default());
    }
    // Only IP literals and paths: the checks never wait on DNS here.
    let is_ip_host = parse_remote(text).is_ok_and(|u| {
        matches!(u.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
    });
    let remote = text.contains("://") && !text.starts_with("file://") && !text.starts_with("s3://");
    if remote && !is_ip_host {
        return;
    }
    match rt.block_on(MediaSpec::from_uri(text, policy)) {
        Ok(MediaSpec::Http(u) | MediaSpec::Rtsp(u)) => {
            let url = parse_remote(&u).expect("an accepted URL parses");
            let ip: std::net::IpAddr = match url.host() {
                Some(url::Host::Ipv4(v)) => v.into(),
                Some(url::Host::Ipv6(v)) => v.into(),
                other => panic!("accepted a host that was not checked: {other:?}"),
            };
            assert!(!is_private(ip), "accepted a private address: {text:?}");
        }
        Ok(MediaSpec::File(p)) => {
            assert!(p.starts_with(&policy.allow_dirs[0]), "escaped: {text:?} -> {p:?}");
            assert!(p.is_file());
        }
        Ok(MediaSpec::S3 { .. } | MediaSpec::Upload(_)) | Err(_) => {}
    }
});
