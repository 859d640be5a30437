//! Where a request's video comes from, and whether it may: the reference service's
//! request shapes (`{"video_path": URI}`, `{"bucket": B, "video_key": K}`), raw uploads
//! streamed to disk within a size and rate limit, local paths confined to
//! `--allow-dir`, remote URIs only with `--allow-remote` and never to loopback or
//! private addresses without `--allow-private` (no server-side request forgery; the
//! checks are in [`super::net`]), S3 through `object_store`.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use super::net::{self, CheckedUrl, Network, redact};

/// A download of a remote source must finish within this.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// An upload may pause this long between two pieces of its body (then 408).
pub const UPLOAD_IDLE: Duration = Duration::from_secs(30);

/// An upload is held to its minimum rate only after this long.
pub const UPLOAD_GRACE: Duration = Duration::from_secs(10);

/// What the server lets requests read.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Local media may be read only under these folders (canonical paths).
    pub allow_dirs: Vec<PathBuf>,
    /// http(s) and rtsp sources are allowed.
    pub allow_remote: bool,
    /// Remote sources may resolve to loopback or private addresses.
    pub allow_private: bool,
    /// Networks remote sources may resolve to even when they are private.
    pub allow_nets: Vec<Network>,
    /// Live streams may open local capture devices (`/dev/video*`).
    pub allow_devices: bool,
    /// Largest body or download, in bytes.
    pub max_body: u64,
    /// Slowest average upload rate accepted (bytes/s) after [`UPLOAD_GRACE`].
    pub min_upload_rate: u64,
}

impl Policy {
    /// Whether a remote source may connect to `ip`.
    pub fn may_connect(&self, ip: IpAddr) -> bool {
        self.allow_private || !net::is_private(ip) || self.allow_nets.iter().any(|n| n.contains(ip))
    }
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

    /// The source a URI or path names, checked against `policy`. Remote URLs are
    /// parsed and their hosts checked here (and again when they are fetched).
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
        let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => {
                let checked = CheckedUrl::parse(uri, policy).await?;
                Ok(Self::Http(checked.url.to_string()))
            }
            Some("rtsp" | "rtsps") => {
                let checked = CheckedUrl::parse(uri, policy).await?;
                Ok(Self::Rtsp(checked.url.to_string()))
            }
            Some("file") => {
                let path = url::Url::parse(uri)
                    .ok()
                    .filter(|u| u.host().is_none())
                    .and_then(|u| u.to_file_path().ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{}: not a local file URI (file:///absolute/path)",
                            redact(uri)
                        ))
                    })?;
                Ok(Self::File(check_path(&path, policy)?))
            }
            Some(_) => Err(ApiError::bad_request(format!(
                "{}: use file://, a path, http(s)://, rtsp:// or s3://",
                redact(uri)
            ))),
            None => Ok(Self::File(check_path(Path::new(uri), policy)?)),
        }
    }

    /// The source as shown in logs and answers: no credentials, and no path of the
    /// server's own (an upload is "upload").
    pub fn describe(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Upload(_) => "upload".to_string(),
            Self::Http(u) | Self::Rtsp(u) => redact(u),
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// The same source with any credentials taken out of its URL, and those
    /// credentials (`user:password`), for storing the two apart.
    pub fn split_credentials(&self) -> (MediaSpec, Option<String>) {
        let (Self::Http(u) | Self::Rtsp(u)) = self else {
            return (self.clone(), None);
        };
        let Ok(mut url) = url::Url::parse(u) else {
            return (self.clone(), None);
        };
        if url.username().is_empty() && url.password().is_none() {
            return (self.clone(), None);
        }
        let secret = format!("{}:{}", url.username(), url.password().unwrap_or(""));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let bare = url.to_string();
        let spec = match self {
            Self::Http(_) => Self::Http(bare),
            _ => Self::Rtsp(bare),
        };
        (spec, Some(secret))
    }

    /// This source with `secret` (from [`split_credentials`](Self::split_credentials))
    /// put back into its URL.
    pub fn with_credentials(&self, secret: &str) -> MediaSpec {
        let (Self::Http(u) | Self::Rtsp(u)) = self else {
            return self.clone();
        };
        let Ok(mut url) = url::Url::parse(u) else {
            return self.clone();
        };
        let (user, password) = secret.split_once(':').unwrap_or((secret, ""));
        let _ = url.set_username(user);
        let _ = url.set_password((!password.is_empty()).then_some(password));
        match self {
            Self::Http(_) => Self::Http(url.to_string()),
            _ => Self::Rtsp(url.to_string()),
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

/// `path` resolved (symlinks, `..`) and inside an allowed folder. A path outside every
/// allowed folder is refused the same way (403) whether or not it exists, so answers
/// tell nothing about files the server may not read.
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
    let inside = |p: &Path| policy.allow_dirs.iter().any(|d| p.starts_with(d));
    let outside = || {
        ApiError::forbidden(format!(
            "{}: outside the folders the server may read (--allow-dir)",
            path.display()
        ))
    };
    let Ok(real) = path.canonicalize() else {
        // Where the path would be: its deepest existing folder resolved, the rest
        // appended. Outside an allowed folder: 403, as for a file that exists.
        return Err(if inside(&would_be(path)) {
            ApiError::not_found(format!("{}: no such file", path.display()))
        } else {
            outside()
        });
    };
    if !inside(&real) {
        return Err(outside());
    }
    if !real.is_file() {
        return Err(ApiError::bad_request(format!(
            "{}: not a file",
            path.display()
        )));
    }
    Ok(real)
}

/// Where a path that does not resolve would be: `.` and `..` taken lexically, the
/// deepest existing ancestor resolved (symlinks), the missing rest appended.
fn would_be(path: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut base = lexical.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = base.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(real, |p, c: &std::ffi::OsString| p.join(c));
        }
        match (base.file_name().map(|n| n.to_owned()), base.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                base = parent.to_path_buf();
            }
            _ => return lexical,
        }
    }
}

/// How long an upload may take: a pause of at most [`UPLOAD_IDLE`], and after
/// [`UPLOAD_GRACE`] an average of at least `min_rate` bytes per second.
#[derive(Clone, Copy, Debug)]
pub struct UploadRate {
    /// Bytes per second.
    pub min_rate: u64,
}

/// Streams a request `body` into `path`: at most `limit` bytes (413 beyond), at the
/// policy's minimum rate (408 below it); the file is removed on any error.
pub async fn save_body(body: Body, path: &Path, policy: &Policy) -> Result<u64, ApiError> {
    let rate = UploadRate {
        min_rate: policy.min_upload_rate,
    };
    save_stream(body.into_data_stream(), path, policy.max_body, Some(rate)).await
}

/// Streams `stream` into `path`, at most `limit` bytes, held to `rate` when given.
pub async fn save_stream<S, E>(
    stream: S,
    path: &Path,
    limit: u64,
    rate: Option<UploadRate>,
) -> Result<u64, ApiError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal(format!("storing the upload: {e}")))?;
    let started = tokio::time::Instant::now();
    let mut stream = std::pin::pin!(stream);
    let mut written = 0u64;
    let result = async {
        loop {
            let next = match rate {
                None => stream.next().await,
                Some(r) => {
                    // By time t the body must have reached min_rate × (t − grace) bytes.
                    let behind = started
                        + UPLOAD_GRACE
                        + Duration::from_secs_f64(written as f64 / r.min_rate.max(1) as f64);
                    let due = behind.min(tokio::time::Instant::now() + UPLOAD_IDLE);
                    tokio::time::timeout_at(due, stream.next())
                        .await
                        .map_err(|_| ApiError::upload_too_slow(r.min_rate, UPLOAD_IDLE))?
                }
            };
            let Some(chunk) = next else { break };
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

/// Downloads a checked http(s) URL into `dir` through [`net::fetch`] (pinned
/// addresses, every redirect re-checked), within the size limit and
/// [`DOWNLOAD_TIMEOUT`].
async fn download_http(url: &str, dir: &Path, policy: &Policy) -> Result<PathBuf, ApiError> {
    let checked = CheckedUrl::parse(url, policy).await?;
    let shown = checked.shown();
    let path = dir.join("download");
    let download = async {
        let resp = net::fetch(checked, policy).await?;
        if resp.content_length().is_some_and(|n| n > policy.max_body) {
            return Err(ApiError::too_large(policy.max_body));
        }
        let stream = resp
            .bytes_stream()
            .map(|c| c.map_err(std::io::Error::other));
        save_stream(stream, &path, policy.max_body, None).await
    };
    tokio::time::timeout(DOWNLOAD_TIMEOUT, download)
        .await
        .map_err(|_| {
            ApiError::bad_gateway(format!(
                "{shown}: the download took longer than {} s",
                DOWNLOAD_TIMEOUT.as_secs()
            ))
        })??;
    Ok(path)
}

/// Downloads an S3 object into `dir` with the standard `AWS_*` environment; an
/// endpoint override (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT`) reaches S3-compatible servers.
async fn download_s3(bucket: &str, key: &str, dir: &Path, limit: u64) -> Result<PathBuf, ApiError> {
    use object_store::ObjectStore;
    let shown = format!("s3://{bucket}/{key}");
    let store = crate::output::store::s3_client(bucket)
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
    save_stream(stream, &path, limit, None).await?;
    Ok(path)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_paths_are_refused_alike_whether_or_not_they_exist() {
        let root = tempfile::tempdir().unwrap();
        let media = root.path().join("media");
        std::fs::create_dir_all(&media).unwrap();
        std::fs::write(media.join("a.mp4"), b"x").unwrap();
        std::fs::write(root.path().join("secret.mp4"), b"x").unwrap();
        std::os::unix::fs::symlink(root.path(), media.join("up")).unwrap();
        let policy = Policy {
            allow_dirs: vec![media.canonicalize().unwrap()],
            ..Policy::default()
        };
        let status = |p: PathBuf| check_path(&p, &policy).map_err(|e| e.status.as_u16());
        assert!(status(media.join("a.mp4")).is_ok());
        assert_eq!(status(media.join("none.mp4")), Err(404));
        assert_eq!(status(media.join("sub/none.mp4")), Err(404));
        for (exists, missing) in [
            (root.path().join("secret.mp4"), root.path().join("none.mp4")),
            (media.join("../secret.mp4"), media.join("../none.mp4")),
            (media.join("up/secret.mp4"), media.join("up/none.mp4")),
            (
                PathBuf::from("/etc/hostname"),
                PathBuf::from("/etc/none-such"),
            ),
            (
                media.join("x/../../secret.mp4"),
                media.join("x/../../none.mp4"),
            ),
        ] {
            assert_eq!(status(exists.clone()), Err(403), "{}", exists.display());
            assert_eq!(status(missing.clone()), Err(403), "{}", missing.display());
        }
    }

    #[test]
    fn credentials_are_stored_apart() {
        let spec = MediaSpec::Http("http://user:pa%40ss@example.com/x.mp4".into());
        let (bare, secret) = spec.split_credentials();
        assert_eq!(bare, MediaSpec::Http("http://example.com/x.mp4".into()));
        assert_eq!(secret.as_deref(), Some("user:pa%40ss"));
        assert_eq!(bare.with_credentials(&secret.unwrap()), spec);
        let plain = MediaSpec::Rtsp("rtsp://cam/x".into());
        assert_eq!(plain.split_credentials(), (plain.clone(), None));
    }
}
