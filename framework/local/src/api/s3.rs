//! S3 for `modelstage api`, through `object_store`: listing, downloading and uploading objects,
//! with the endpoint and credentials the AWS tools use (`AWS_ENDPOINT_URL_S3`, else
//! `AWS_ENDPOINT_URL`; `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else the
//! profile of the shared credentials file, else web identity, container or instance
//! credentials; the region `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the region of the
//! request the transfer serves), so that real S3, MinIO or any S3-compatible store serves.
//! Every transfer is bounded: objects per prefix and bytes per job.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{ObjectStore, RetryConfig};
use tokio::io::AsyncWriteExt;

use super::wire::quote;

/// How long a request to S3 is retried.
const RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How many objects one prefix may hold (a channel, a transform input).
pub const MAX_OBJECTS: usize = 10_000;
/// How many keys a prefix's download reads in the listing of the prefix's folder (which holds
/// the keys that begin with the prefix, and may hold others).
const MAX_LISTED: usize = 1_000_000;

/// Why a transfer from or to S3 failed. The message names the location and says what is wrong
/// (it becomes a job's `FailureReason`, or the message of a `ValidationException`); the cause is
/// part of it, not a `source`, so that an `anyhow` chain does not print it twice. The errors of
/// `object_store` are boxed beside a location, which keeps the `Result`s of transfers small.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// An `s3://` URI without a valid bucket name.
    #[error("{} does not name an S3 bucket", quote(uri))]
    NoBucket {
        /// The URI as given.
        uri: String,
    },
    /// The client of a bucket cannot be built (a bad endpoint or region setting).
    #[error("cannot reach the S3 bucket {}: {error}", quote(bucket))]
    Client {
        /// The bucket.
        bucket: String,
        /// Why.
        error: object_store::Error,
    },
    /// An object's metadata cannot be read.
    #[error("cannot read {uri}: {error}")]
    Head {
        /// The object.
        uri: S3Uri,
        /// Why.
        error: Box<object_store::Error>,
    },
    /// A prefix cannot be listed.
    #[error("cannot list {uri}: {error}")]
    List {
        /// The prefix.
        uri: S3Uri,
        /// Why.
        error: Box<object_store::Error>,
    },
    /// The folder of a prefix holds more keys than are listed.
    #[error(
        "the folder of {uri} holds more than {MAX_LISTED} objects: give a prefix that ends with / \
         to read one folder of it"
    )]
    FolderTooLarge {
        /// The prefix.
        uri: S3Uri,
    },
    /// A prefix holds more than [`MAX_OBJECTS`] objects.
    #[error("{uri} holds more than {MAX_OBJECTS} objects")]
    TooManyObjects {
        /// The prefix.
        uri: S3Uri,
    },
    /// A prefix holds more bytes than a job may download.
    #[error("{uri} holds more than {max_bytes} bytes (--max-s3-mb)")]
    PrefixTooLarge {
        /// The prefix.
        uri: S3Uri,
        /// The bound.
        max_bytes: u64,
    },
    /// A prefix matches no object, which the service refuses too.
    #[error("no S3 objects found under {uri}")]
    NothingUnder {
        /// The prefix.
        uri: S3Uri,
    },
    /// A key below a prefix that would leave its folder as a local path.
    #[error("the S3 key {} cannot be a local file name", quote(key))]
    UnsafeKey {
        /// The key.
        key: String,
    },
    /// The object does not exist.
    #[error("{uri} does not exist")]
    NotFound {
        /// The object.
        uri: S3Uri,
    },
    /// An object's download failed.
    #[error("cannot download {uri}: {error}")]
    Download {
        /// The object.
        uri: S3Uri,
        /// Why.
        error: Box<object_store::Error>,
    },
    /// An object is larger than a job may still download.
    #[error("{uri} is {size} bytes, more than the {max_bytes} allowed (--max-s3-mb)")]
    ObjectTooLarge {
        /// The object.
        uri: S3Uri,
        /// Its size.
        size: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// An object turned out larger, while streamed, than a job may still download.
    #[error("{uri} is more than the {max_bytes} bytes allowed (--max-s3-mb)")]
    StreamTooLarge {
        /// The object.
        uri: S3Uri,
        /// The bound.
        max_bytes: u64,
    },
    /// A local folder or file to download into cannot be created.
    #[error("cannot create {}: {error}", path.display())]
    Create {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A downloaded file cannot be written.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A local folder to upload cannot be listed.
    #[error("cannot list {}: {error}", dir.display())]
    ListLocal {
        /// The folder.
        dir: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A file's upload failed.
    #[error("cannot upload {} to {uri}: {error}", file.display())]
    Upload {
        /// The local file.
        file: PathBuf,
        /// Where it was going.
        uri: S3Uri,
        /// Why.
        error: std::io::Error,
    },
}

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    /// The key or key prefix, without a leading `/`.
    pub key: String,
    /// The region its requests are signed for when the environment names none: that of the
    /// request that named the location.
    pub region: String,
}

impl S3Uri {
    /// `None` for a location that is not `s3://`; an error for an `s3://` URI without a bucket.
    pub fn parse(uri: &str, region: &str) -> Option<Result<S3Uri, S3Error>> {
        let rest = uri.trim().strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        Some(if valid {
            Ok(S3Uri {
                bucket: bucket.to_string(),
                key: key.to_string(),
                region: region.to_string(),
            })
        } else {
            Err(S3Error::NoBucket { uri: uri.to_string() })
        })
    }

    /// The location `relative` (a `/`-separated path) below this one, taken as a folder.
    pub fn join(&self, relative: &str) -> S3Uri {
        let key = if self.key.is_empty() || self.key.ends_with('/') {
            format!("{}{relative}", self.key)
        } else {
            format!("{}/{relative}", self.key)
        };
        S3Uri {
            bucket: self.bucket.clone(),
            key,
            region: self.region.clone(),
        }
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// The S3 client: one store per bucket, on a runtime of its own (job threads and request
/// handlers call it alike).
pub struct S3 {
    runtime: tokio::runtime::Runtime,
    endpoint: Option<String>,
    /// By region and bucket.
    stores: Mutex<HashMap<(String, String), Arc<dyn ObjectStore>>>,
}

impl S3 {
    /// Reads the endpoint from the environment; credentials are read when a bucket is first used.
    pub fn from_env() -> anyhow::Result<S3> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("modelstage-s3")
            .enable_all()
            .build()?;
        let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
        Ok(S3 {
            runtime,
            endpoint,
            stores: Mutex::default(),
        })
    }

    /// Where S3 requests go: the endpoint setting, or AWS.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_deref().unwrap_or("AWS")
    }

    fn store(&self, uri: &S3Uri) -> Result<Arc<dyn ObjectStore>, S3Error> {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        let id = (uri.region.clone(), uri.bucket.clone());
        if let Some(store) = stores.get(&id) {
            return Ok(Arc::clone(store));
        }
        let bucket = uri.bucket.as_str();
        // A store that does not answer fails a request within RETRY_TIMEOUT (CreateModel waits
        // for its check), not after the crate's default of minutes.
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: RETRY_TIMEOUT,
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry);
        if ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .all(|name| std::env::var_os(name).is_none_or(|v| v.is_empty()))
        {
            builder = builder.with_region(&uri.region);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            if let Some(profile) = profile_credentials() {
                builder = builder
                    .with_access_key_id(profile.key_id)
                    .with_secret_access_key(profile.secret);
                if let Some(token) = profile.token {
                    builder = builder.with_token(token);
                }
            } else if ![
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
            {
                // What is left is the instance metadata service, whose failure off EC2 says
                // little by itself.
                log::warn!(
                    "no S3 credentials in the environment (AWS_ACCESS_KEY_ID) or the shared \
                     credentials file: asking the instance metadata service, as on EC2"
                );
            }
        }
        let store: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(|error| S3Error::Client {
            bucket: bucket.to_string(),
            error,
        })?);
        stores.insert(id, Arc::clone(&store));
        Ok(store)
    }

    /// Runs `work` on the S3 runtime, from a plain thread or from a request handler (which runs
    /// on a runtime of its own, where blocking on another is refused).
    fn block<T: Send>(&self, work: impl std::future::Future<Output = T> + Send) -> T {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.runtime.block_on(work))
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        } else {
            self.runtime.block_on(work)
        }
    }

    /// Whether the object exists.
    pub fn exists(&self, uri: &S3Uri) -> Result<bool, S3Error> {
        let store = self.store(uri)?;
        self.block(async {
            match store.head(&Key::from(uri.key.as_str())).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(error) => Err(S3Error::Head {
                    uri: uri.clone(),
                    error: Box::new(error),
                }),
            }
        })
    }

    /// Downloads one object to `file` (written beside it, then renamed), refusing one of more
    /// than `max_bytes`.
    pub fn download(&self, uri: &S3Uri, file: &Path, max_bytes: u64) -> Result<u64, S3Error> {
        let store = self.store(uri)?;
        self.block(fetch(&*store, uri, file, max_bytes))
    }

    /// Downloads every object whose key starts with `uri`'s key into the folder `dest`, each
    /// at [`relative_key`]; returns how many bytes. At most [`MAX_OBJECTS`] objects and
    /// `max_bytes` in all; a prefix that matches nothing is an error, as it is for the service.
    pub fn download_prefix(&self, uri: &S3Uri, dest: &Path, max_bytes: u64) -> Result<u64, S3Error> {
        let store = self.store(uri)?;
        let folder = uri.key.rfind('/').map_or("", |i| &uri.key[..=i]);
        self.block(async {
            let prefix = Key::from(folder.trim_end_matches('/'));
            let mut listing = store.list(if folder.is_empty() { None } else { Some(&prefix) });
            let mut objects = Vec::new();
            let mut total = 0u64;
            let mut listed = 0usize;
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|error| S3Error::List {
                    uri: uri.clone(),
                    error: Box::new(error),
                })?;
                listed += 1;
                if listed > MAX_LISTED {
                    return Err(S3Error::FolderTooLarge { uri: uri.clone() });
                }
                let key = meta.location.as_ref();
                if !key.starts_with(uri.key.as_str()) || key.ends_with('/') {
                    continue;
                }
                if objects.len() == MAX_OBJECTS {
                    return Err(S3Error::TooManyObjects { uri: uri.clone() });
                }
                total += meta.size;
                if total > max_bytes {
                    return Err(S3Error::PrefixTooLarge {
                        uri: uri.clone(),
                        max_bytes,
                    });
                }
                objects.push(key.to_string());
            }
            if objects.is_empty() {
                return Err(S3Error::NothingUnder { uri: uri.clone() });
            }
            let mut left = max_bytes;
            for key in objects {
                let Some(relative) = safe_relative(relative_key(&uri.key, &key)) else {
                    return Err(S3Error::UnsafeKey { key });
                };
                let object = S3Uri {
                    bucket: uri.bucket.clone(),
                    key,
                    region: uri.region.clone(),
                };
                left -= fetch(&*store, &object, &dest.join(relative), left).await?;
            }
            Ok(max_bytes - left)
        })
    }

    /// Uploads every file below `dir` to `uri` taken as a folder, each at its path relative to
    /// `dir`; returns how many.
    pub fn upload_dir(&self, dir: &Path, uri: &S3Uri) -> Result<usize, S3Error> {
        let mut files = Vec::new();
        list_files(dir, Path::new(""), &mut files).map_err(|error| S3Error::ListLocal {
            dir: dir.to_path_buf(),
            error,
        })?;
        let store = self.store(uri)?;
        self.block(async {
            for relative in &files {
                let parts: Vec<_> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect();
                let target = uri.join(&parts.join("/"));
                put_file(&store, &dir.join(relative), &target).await?;
            }
            Ok(files.len())
        })
    }
}

/// Streams one object into `file`; returns its size.
async fn fetch(store: &dyn ObjectStore, uri: &S3Uri, file: &Path, max_bytes: u64) -> Result<u64, S3Error> {
    let failed = |error| S3Error::Download {
        uri: uri.clone(),
        error: Box::new(error),
    };
    let answer = store
        .get(&Key::from(uri.key.as_str()))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => S3Error::NotFound { uri: uri.clone() },
            e => failed(e),
        })?;
    if answer.meta.size > max_bytes {
        return Err(S3Error::ObjectTooLarge {
            uri: uri.clone(),
            size: answer.meta.size,
            max_bytes,
        });
    }
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(|error| S3Error::Create {
            path: parent.to_path_buf(),
            error,
        })?;
    }
    let partial = file.with_extension("partial");
    let mut out = std::fs::File::create(&partial).map_err(|error| S3Error::Create {
        path: partial.clone(),
        error,
    })?;
    let write_failed = |path: &Path| {
        let path = path.to_path_buf();
        move |error| S3Error::Write { path, error }
    };
    let mut written = 0u64;
    let mut stream = answer.into_stream();
    let copied = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(failed)?;
            written += chunk.len() as u64;
            if written > max_bytes {
                return Err(S3Error::StreamTooLarge {
                    uri: uri.clone(),
                    max_bytes,
                });
            }
            out.write_all(&chunk).map_err(write_failed(&partial))?;
        }
        out.flush().map_err(write_failed(&partial))?;
        std::fs::rename(&partial, file).map_err(write_failed(file))
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied.map(|()| written)
}

async fn put_file(store: &Arc<dyn ObjectStore>, file: &Path, uri: &S3Uri) -> Result<(), S3Error> {
    let failed = |error| S3Error::Upload {
        file: file.to_path_buf(),
        uri: uri.clone(),
        error,
    };
    let mut input = tokio::fs::File::open(file).await.map_err(failed)?;
    // One PUT for a small file, a multipart upload for a large one.
    let mut writer = BufWriter::new(Arc::clone(store), Key::from(uri.key.as_str()));
    tokio::io::copy(&mut input, &mut writer).await.map_err(failed)?;
    writer.shutdown().await.map_err(failed)
}

/// The regular files below `dir`, relative to it, in sorted order; links are not followed.
fn list_files(dir: &Path, prefix: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let kind = entry.file_type()?;
        let relative = prefix.join(entry.file_name());
        if kind.is_dir() {
            list_files(&entry.path(), &relative, files)?;
        } else if kind.is_file() {
            files.push(relative);
        }
    }
    Ok(())
}

/// Where an object found under a prefix goes in the folder of its channel or input, as
/// SageMaker lays them out: below a folder prefix (`data/` or `data`) at its path below it, the
/// object the prefix names exactly at its file name, one that only begins with the prefix
/// (`data/part` matching `data/part-1.csv`) at its path below the prefix's folder.
fn relative_key<'k>(prefix: &str, key: &'k str) -> &'k str {
    let below = &key[prefix.len().min(key.len())..];
    let folder = prefix.rfind('/').map_or(0, |i| i + 1);
    if below.is_empty() {
        &key[folder..]
    } else if prefix.is_empty() || prefix.ends_with('/') || below.starts_with('/') {
        below.trim_start_matches('/')
    } else {
        &key[folder..]
    }
}

/// A key below a prefix as a relative path that stays in its folder: no empty, `.` or `..`
/// segment, nothing absolute.
pub fn safe_relative(key: &str) -> Option<PathBuf> {
    let path = Path::new(key);
    let plain = !key.is_empty()
        && !key.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then(|| path.to_path_buf())
}

/// Keys of a profile in the shared credentials file.
struct Profile {
    key_id: String,
    secret: String,
    token: Option<String>,
}

/// The profile `AWS_PROFILE` (else `default`) of `AWS_SHARED_CREDENTIALS_FILE` (else
/// `~/.aws/credentials`), as the AWS tools read it.
fn profile_credentials() -> Option<Profile> {
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".aws/credentials")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    parse_profile(&text, &profile)
}

fn parse_profile(text: &str, profile: &str) -> Option<Profile> {
    let mut section = String::new();
    let mut values = HashMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if section == profile {
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
    }
    Some(Profile {
        key_id: values.remove("aws_access_key_id")?,
        secret: values.remove("aws_secret_access_key")?,
        token: values.remove("aws_session_token"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_name_a_bucket_and_a_key() {
        let uri = S3Uri::parse("s3://my-bucket/data/train", "eu-west-1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (uri.bucket.as_str(), uri.key.as_str()),
            ("my-bucket", "data/train")
        );
        assert_eq!(
            uri.join("a/b.csv").to_string(),
            "s3://my-bucket/data/train/a/b.csv"
        );
        let root = S3Uri::parse("s3://bkt", "eu-west-1").unwrap().unwrap();
        assert_eq!(
            (root.join("x").key.as_str(), root.join("x").region.as_str()),
            ("x", "eu-west-1")
        );
        assert!(S3Uri::parse("file:///x", "r").is_none());
        assert!(S3Uri::parse("s3:///key", "r").unwrap().is_err());
        assert!(S3Uri::parse("s3://Bad_Bucket/k", "r").unwrap().is_err());
    }

    #[test]
    fn objects_are_laid_out_below_their_prefix() {
        assert_eq!(
            relative_key("data/abalone.csv", "data/abalone.csv"),
            "abalone.csv"
        );
        assert_eq!(relative_key("featurized", "featurized/a.csv.out"), "a.csv.out");
        assert_eq!(relative_key("in/", "in/sub/a.csv"), "sub/a.csv");
        assert_eq!(relative_key("in/part", "in/part-1.csv"), "part-1.csv");
        assert_eq!(relative_key("", "a/b.csv"), "a/b.csv");
    }

    #[test]
    fn keys_never_leave_their_folder() {
        assert_eq!(safe_relative("a/b.csv"), Some(PathBuf::from("a/b.csv")));
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a//b", "./a"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_profile_is_read_from_its_section() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key=B\n\n[other]\n\
                    aws_access_key_id=C\naws_secret_access_key=D\naws_session_token=T\n";
        let p = parse_profile(text, "other").unwrap();
        assert_eq!(
            (p.key_id.as_str(), p.secret.as_str(), p.token.as_deref()),
            ("C", "D", Some("T"))
        );
        assert_eq!(parse_profile(text, "default").unwrap().key_id, "A");
        assert!(parse_profile(text, "missing").is_none());
    }
}
