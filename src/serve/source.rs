//! Where a request's video comes from, and whether it may: the reference service's
//! request shapes (`{"video_path": URI}`, `{"bucket": B, "video_key": K}`), raw uploads
//! streamed to disk, local paths confined to `--allow-dir`, remote URIs only with
//! `--allow-remote` and never to loopback or private addresses without
//! `--allow-private` (no server-side request forgery), S3 through `object_store`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use axum::body::Body;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use crate::cli::live::redact;

/// What the server lets requests read.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Local media may be read only under these folders (canonical paths).
    pub allow_dirs: Vec<PathBuf>,
    /// http(s) and rtsp sources are allowed.
    pub allow_remote: bool,
    /// Remote sources may resolve to loopback or private addresses.
    pub allow_private: bool,
    /// Live streams may open local capture devices (`/dev/video*`).
    pub allow_devices: bool,
    /// Largest body or download, in bytes.
    pub max_body: u64,
}

/// The reference service's JSON request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaRequest {
    /// A URI or local path: `file://`, `/path`, `http(s)://`, `rtsp://`, `s3://bucket/key`.
    pub video_path: Option<String>,
    /// S3 bucket (with `video_key`).
    pub bucket: Option<String>,
    /// S3 key (with `bucket`).
    pub video_key: Option<String>,
}

/// A checked media source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSpec {
    /// A local file under an allowed folder.
    File(PathBuf),
    /// An http(s) URL, downloaded before analysis.
    Http(String),
    /// An RTSP URL, played directly.
    Rtsp(String),
    /// An S3 object, downloaded before analysis.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// A file uploaded with the request.
    Upload(PathBuf),
}

impl MediaSpec {
    /// The source of a JSON request, checked against `policy`.
    pub async fn from_request(req: MediaRequest, policy: &Policy) -> Result<Self, ApiError> {
        match (req.video_path, req.bucket, req.video_key) {
            (Some(p), None, None) => Self::from_uri(&p, policy).await,
            (None, Some(bucket), Some(key)) => s3(bucket, key),
            _ => Err(ApiError::bad_request(
                "give {\"video_path\": URI} or {\"bucket\": B, \"video_key\": K}",
            )),
        }
    }

    /// The source a URI or path names, checked against `policy`.
    pub async fn from_uri(uri: &str, policy: &Policy) -> Result<Self, ApiError> {
        let uri = uri.trim();
        if uri.is_empty() {
            return Err(ApiError::bad_request("video_path is empty"));
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| ApiError::bad_request("use s3://bucket/key"))?;
            return s3(bucket.into(), key.into());
        }
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            check_remote(uri, policy).await?;
            return Ok(Self::Http(uri.into()));
        }
        if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
            check_remote(uri, policy).await?;
            return Ok(Self::Rtsp(uri.into()));
        }
        let path = if let Some(rest) = uri.strip_prefix("file://") {
            PathBuf::from(crate::cli::inputs::percent_decode(rest))
        } else if uri.contains("://") {
            return Err(ApiError::bad_request(format!(
                "{}: use file://, a path, http(s)://, rtsp:// or s3://",
                redact(uri)
            )));
        } else {
            PathBuf::from(uri)
        };
        Ok(Self::File(check_path(&path, policy)?))
    }

    /// The source as shown in logs and job records (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::File(p) | Self::Upload(p) => p.display().to_string(),
            Self::Http(u) | Self::Rtsp(u) => redact(u),
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// A URI uridecodebin can play: local files as they are, remote ones downloaded
    /// into `dir` first (within the size limit).
    pub async fn materialize(&self, dir: &Path, policy: &Policy) -> Result<String, ApiError> {
        let file = match self {
            Self::File(p) | Self::Upload(p) => p.clone(),
            Self::Rtsp(u) => return Ok(u.clone()),
            Self::Http(u) => download_http(u, dir, policy).await?,
            Self::S3 { bucket, key } => download_s3(bucket, key, dir, policy.max_body).await?,
        };
        gst::glib::filename_to_uri(&file, None)
            .map(|u| u.to_string())
            .map_err(|e| ApiError::internal(format!("{}: {e}", file.display())))
    }
}

fn s3(bucket: String, key: String) -> Result<MediaSpec, ApiError> {
    let valid = !bucket.is_empty()
        && bucket.len() <= 63
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !valid {
        return Err(ApiError::bad_request(format!(
            "{bucket:?} is not an S3 bucket name"
        )));
    }
    if key.is_empty() || key.len() > 1024 {
        return Err(ApiError::bad_request("the S3 key is empty or too long"));
    }
    Ok(MediaSpec::S3 { bucket, key })
}

/// `path` resolved (symlinks, `..`) and inside an allowed folder.
pub fn check_path(path: &Path, policy: &Policy) -> Result<PathBuf, ApiError> {
    if policy.allow_dirs.is_empty() {
        return Err(ApiError::forbidden(
            "local paths are not allowed: the server was started without --allow-dir",
        ));
    }
    if !path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "{}: give an absolute path or a file:// URI",
            path.display()
        )));
    }
    let real = path
        .canonicalize()
        .map_err(|_| ApiError::not_found(format!("{}: no such file", path.display())))?;
    if !policy.allow_dirs.iter().any(|d| real.starts_with(d)) {
        return Err(ApiError::forbidden(format!(
            "{}: outside the folders the server may read (--allow-dir)",
            path.display()
        )));
    }
    if !real.is_file() {
        return Err(ApiError::bad_request(format!(
            "{}: not a file",
            path.display()
        )));
    }
    Ok(real)
}

/// Remote sources: allowed at all, with a host, and not pointing into this machine or
/// its private network unless that is allowed. Returns the addresses checked.
async fn check_remote(uri: &str, policy: &Policy) -> Result<Vec<SocketAddr>, ApiError> {
    if !policy.allow_remote {
        return Err(ApiError::forbidden(format!(
            "{}: remote sources are not allowed: the server was started without --allow-remote",
            redact(uri)
        )));
    }
    let (host, port) =
        host_port(uri).ok_or_else(|| ApiError::bad_request(format!("{}: no host", redact(uri))))?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| ApiError::bad_gateway(format!("{host}: cannot resolve the host")))?
        .collect();
    if addrs.is_empty() {
        return Err(ApiError::bad_gateway(format!("{host}: no address")));
    }
    if !policy.allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err(ApiError::forbidden(format!(
            "{}: resolves to a loopback or private address; the server refuses those \
             without --allow-private",
            redact(uri)
        )));
    }
    Ok(addrs)
}

/// Host and port of a URL (default ports by scheme), without credentials.
fn host_port(uri: &str) -> Option<(String, u16)> {
    let (scheme, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "rtsp" | "rtsps" => 554,
        _ => 80,
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6.split_once(']')?;
        (
            h.to_string(),
            rest.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
            None => (authority.to_string(), None),
        }
    };
    (!host.is_empty()).then(|| (host, port.unwrap_or(default)))
}

/// Loopback, private, link-local, unspecified, shared, multicast and similar
/// addresses: nothing a public video URL should point to.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || v.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v.to_ipv4_mapped()
                    .is_some_and(|m| is_private(IpAddr::V4(m)))
        }
    }
}

/// Streams `body` into `path`, at most `limit` bytes (413 beyond; the file is removed).
pub async fn save_body(body: Body, path: &Path, limit: u64) -> Result<u64, ApiError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal(format!("storing the upload: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
            written += chunk.len() as u64;
            if written > limit {
                return Err(ApiError::too_large(limit));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::internal(format!("storing the upload: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| ApiError::internal(format!("storing the upload: {e}")))?;
        if written == 0 {
            return Err(ApiError::bad_request(
                "the body is empty: send the video's bytes",
            ));
        }
        Ok(written)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(path).await;
    }
    result
}

/// Downloads an http(s) URL into `dir`: the host is resolved and checked once and the
/// connection pinned to those addresses (a second lookup cannot redirect it), redirects
/// are refused, the size is limited.
async fn download_http(url: &str, dir: &Path, policy: &Policy) -> Result<PathBuf, ApiError> {
    let addrs = check_remote(url, policy).await?;
    let (host, _) = host_port(url).ok_or_else(|| ApiError::bad_request("no host"))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&host, &addrs)
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let shown = redact(url);
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|_| ApiError::bad_gateway(format!("{shown}: cannot fetch")))?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(if status == reqwest::StatusCode::NOT_FOUND {
            ApiError::not_found(format!("{shown}: not found (404)"))
        } else {
            ApiError::bad_gateway(format!("{shown}: answered {status}"))
        });
    }
    if resp.content_length().is_some_and(|n| n > policy.max_body) {
        return Err(ApiError::too_large(policy.max_body));
    }
    let path = dir.join("download");
    let stream = resp
        .bytes_stream()
        .map(|c| c.map_err(std::io::Error::other));
    save_body(Body::from_stream(stream), &path, policy.max_body).await?;
    Ok(path)
}

/// Downloads an S3 object into `dir` with the standard `AWS_*` environment; an
/// endpoint override (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT`) reaches S3-compatible servers.
async fn download_s3(bucket: &str, key: &str, dir: &Path, limit: u64) -> Result<PathBuf, ApiError> {
    use object_store::ObjectStore;
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    for var in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] {
        if let Ok(endpoint) = std::env::var(var) {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
            break;
        }
    }
    let shown = format!("s3://{bucket}/{key}");
    let store = builder
        .build()
        .map_err(|e| ApiError::internal(format!("S3 client: {e}")))?;
    let object = store
        .get(&object_store::path::Path::from(key))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                ApiError::not_found(format!("{shown}: no such object"))
            }
            other => ApiError::bad_gateway(format!("{shown}: {}", first_line(&other.to_string()))),
        })?;
    if object.meta.size > limit {
        return Err(ApiError::too_large(limit));
    }
    let path = dir.join("download");
    let stream = object
        .into_stream()
        .map(|c| c.map_err(std::io::Error::other));
    save_body(Body::from_stream(stream), &path, limit).await?;
    Ok(path)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "151.101.1.1", "2a00:1450:4001::1"] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            host_port("http://u:p@example.com/x"),
            Some(("example.com".into(), 80))
        );
        assert_eq!(
            host_port("https://example.com:8443/x"),
            Some(("example.com".into(), 8443))
        );
        assert_eq!(
            host_port("rtsp://[::1]:8554/cam"),
            Some(("::1".into(), 8554))
        );
        assert_eq!(host_port("rtsp://cam/x"), Some(("cam".into(), 554)));
        assert_eq!(host_port("http:///x"), None);
    }
}
