//! Where `analyze` and `merge` write and read their files: a folder, or an S3 prefix
//! (`s3://bucket/prefix`, any S3-compatible server). Every file appears whole or not
//! at all: in a folder through [`super::files::write_atomic`], on S3 because an
//! object is replaced in one PUT. The S3 client takes the standard `AWS_*`
//! environment (credentials, region); `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`
//! reaches an S3-compatible server.

use std::path::{Path, PathBuf};

use object_store::ObjectStore;
use object_store::path::Path as Key;

use super::files::{remove_stale_temporaries, write_atomic};

/// Why a store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `s3://` without a bucket.
    #[error("{0}: give s3://BUCKET or s3://BUCKET/PREFIX")]
    BadUrl(String),
    /// A folder operation failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The S3 client or server refused.
    #[error("{0}: {1}")]
    S3(String, String),
}

/// A folder or an S3 prefix.
pub enum Store {
    /// A local (or shared) folder.
    Folder(PathBuf),
    /// Objects under `prefix` in a bucket.
    S3(S3Prefix),
}

/// An S3 bucket and key prefix, with the client and a runtime to drive it from
/// synchronous code (any thread may call).
pub struct S3Prefix {
    bucket: String,
    prefix: String,
    client: object_store::aws::AmazonS3,
    runtime: tokio::runtime::Runtime,
}

/// An S3 client for `bucket` from the `AWS_*` environment, with the endpoint
/// override of S3-compatible servers.
pub fn s3_client(bucket: &str) -> Result<object_store::aws::AmazonS3, object_store::Error> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    for var in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] {
        if let Ok(endpoint) = std::env::var(var) {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
            break;
        }
    }
    builder.build()
}

/// The first line of an S3 client error (the rest repeats the request).
fn first_line(e: &object_store::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl Store {
    /// The store `target` names: `s3://bucket[/prefix]`, else a folder.
    pub fn open(target: &Path) -> Result<Self, StoreError> {
        let text = target.to_string_lossy();
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(Store::Folder(target.to_path_buf()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::BadUrl(text.into_owned()));
        }
        let client =
            s3_client(bucket).map_err(|e| StoreError::S3(text.to_string(), first_line(&e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io("the S3 client's runtime".into(), e))?;
        Ok(Store::S3(S3Prefix {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            client,
            runtime,
        }))
    }

    /// The store holding the file `target` names, and the file's name in it.
    pub fn open_file(target: &Path) -> Result<(Self, String), StoreError> {
        let text = target.to_string_lossy();
        let (dir, name) = text.rsplit_once('/').unwrap_or((".", &text));
        if name.is_empty() || dir == "s3:/" {
            return Err(StoreError::BadUrl(text.into_owned()));
        }
        Ok((Store::open(Path::new(dir))?, name.to_string()))
    }

    /// Ready to write: a folder is made and cleared of abandoned temporaries; an S3
    /// prefix is asked for its first object (one request, however many it holds),
    /// so that a wrong bucket or credentials fail before any work.
    pub fn prepare(&self) -> Result<(), StoreError> {
        match self {
            Store::Folder(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(self.shown(""), e))?;
                remove_stale_temporaries(dir);
                Ok(())
            }
            Store::S3(s) => {
                use futures_util::StreamExt;
                let prefix = (!s.prefix.is_empty()).then(|| Key::from(s.prefix.as_str()));
                match s.runtime.block_on(s.client.list(prefix.as_ref()).next()) {
                    Some(Err(e)) => Err(StoreError::S3(self.shown(""), first_line(&e))),
                    _ => Ok(()),
                }
            }
        }
    }

    /// The file `name` as it would be shown to a user (a path or an `s3://` URL).
    pub fn shown(&self, name: &str) -> String {
        match self {
            Store::Folder(dir) => dir.join(name).display().to_string(),
            Store::S3(s) => {
                let key = s.key(name);
                format!("s3://{}/{key}", s.bucket)
            }
        }
    }

    /// The contents of `name`; `None` when there is no such file.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Folder(dir) => match std::fs::read(dir.join(name)) {
                Ok(data) => Ok(Some(data)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::Io(self.shown(name), e)),
            },
            Store::S3(s) => {
                let key = Key::from(s.key(name));
                s.runtime
                    .block_on(async {
                        match s.client.get(&key).await {
                            Ok(object) => object.bytes().await.map(|b| Some(b.to_vec())),
                            Err(object_store::Error::NotFound { .. }) => Ok(None),
                            Err(e) => Err(e),
                        }
                    })
                    .map_err(|e| StoreError::S3(self.shown(name), first_line(&e)))
            }
        }
    }

    /// Writes `name` whole (replacing it).
    pub fn write(&self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Folder(dir) => {
                write_atomic(&dir.join(name), data).map_err(|e| StoreError::Io(self.shown(name), e))
            }
            Store::S3(s) => {
                let key = Key::from(s.key(name));
                let payload = object_store::PutPayload::from(data.to_vec());
                s.runtime
                    .block_on(s.client.put(&key, payload))
                    .map(|_| ())
                    .map_err(|e| StoreError::S3(self.shown(name), first_line(&e)))
            }
        }
    }

    /// The names of the files directly in the store.
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Folder(dir) => {
                let entries =
                    std::fs::read_dir(dir).map_err(|e| StoreError::Io(self.shown(""), e))?;
                Ok(entries
                    .flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect())
            }
            Store::S3(s) => {
                let prefix = (!s.prefix.is_empty()).then(|| Key::from(s.prefix.as_str()));
                let listing = s
                    .runtime
                    .block_on(s.client.list_with_delimiter(prefix.as_ref()))
                    .map_err(|e| StoreError::S3(self.shown(""), first_line(&e)))?;
                Ok(listing
                    .objects
                    .iter()
                    .filter_map(|o| o.location.filename().map(str::to_string))
                    .collect())
            }
        }
    }
}

impl S3Prefix {
    /// The key of `name` under the prefix.
    fn key(&self, name: &str) -> String {
        match (self.prefix.is_empty(), name.is_empty()) {
            (true, _) => name.to_string(),
            (false, true) => format!("{}/", self.prefix),
            (false, false) => format!("{}/{name}", self.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_folder_or_an_s3_prefix() {
        assert!(matches!(
            Store::open(Path::new("out")).unwrap(),
            Store::Folder(_)
        ));
        assert!(matches!(
            Store::open(Path::new("s3://")),
            Err(StoreError::BadUrl(_))
        ));
        let Store::S3(s) = Store::open(Path::new("s3://bucket/runs/a/")).unwrap() else {
            panic!("not S3");
        };
        assert_eq!(
            (s.bucket.as_str(), s.key("x.jsonl").as_str()),
            ("bucket", "runs/a/x.jsonl")
        );
        let (store, name) = Store::open_file(Path::new("s3://bucket/summary.json")).unwrap();
        assert_eq!(store.shown(&name), "s3://bucket/summary.json");
        assert!(Store::open_file(Path::new("s3://bucket/")).is_err());
        let (store, name) = Store::open_file(Path::new("summary.json")).unwrap();
        assert_eq!(store.shown(&name), "./summary.json");
    }

    #[test]
    fn a_folder_reads_writes_and_lists_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("out")).unwrap();
        store.prepare().unwrap();
        assert_eq!(store.read("a.json").unwrap(), None);
        store.write("a.json", b"{}").unwrap();
        assert_eq!(store.read("a.json").unwrap().as_deref(), Some(&b"{}"[..]));
        assert_eq!(store.names().unwrap(), ["a.json"]);
    }
}
