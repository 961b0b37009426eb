//! Artifacts on `s3://` for the jobs and models of `modelstage api`. The code behind `fit`,
//! `transform` and `deploy` reads and writes local paths only, so a request's `s3://` locations
//! are rewritten to `file://` locations in a staging folder of the state folder, one per job or
//! model start ([`Staging`]): what is read is downloaded there before the job starts, what is
//! written is uploaded when it ends, and the folder is removed with the [`Staging`]. A
//! `model.tar.gz` downloaded this way is unpacked by the same code, with the same bounds, as a
//! local one. A multi-model container's `ModelDataUrl` prefix is staged as an empty folder that
//! the runtime fills one target model at a time, on its first request ([`super::multi`]); a
//! manifest on S3 (`S3DataType: ManifestFile`) is staged as the objects it lists
//! ([`super::manifest`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::manifest::ManifestError;
use super::s3::{S3Error, S3Uri, S3};
use super::wire::{quote, ApiError};

/// Why what a job or model reads could not be staged: it becomes the job's `FailureReason` (or
/// the failure of the endpoint's start), in the words of the transfer or of the manifest.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// An object or a prefix could not be downloaded, or its folder created.
    #[error(transparent)]
    Transfer(#[from] S3Error),
    /// A manifest, or what it lists, could not be staged.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// The S3 client and the staging folder.
pub struct Artifacts {
    pub s3: S3,
    dir: PathBuf,
    /// How many bytes one job or model start may download.
    max_bytes: u64,
    /// Names the staging folders of model starts, which may run side by side for one model.
    starts: AtomicU64,
}

/// What one job or model start transfers, and the folder it stages them in.
pub struct Staging {
    root: PathBuf,
    /// Prefixes, into their folder.
    prefixes: Vec<(S3Uri, PathBuf)>,
    /// Single objects, to their file.
    objects: Vec<(S3Uri, PathBuf)>,
    /// Manifests on S3: the objects each lists go below its folder.
    manifests: Vec<Manifest>,
    /// The `ModelDataUrl` prefix of a multi-model container and its folder, created empty: the
    /// runtime fetches each target model into it on first use.
    multi_model: Option<(S3Uri, PathBuf)>,
    /// A local output folder and where it goes.
    upload: Option<(PathBuf, S3Uri)>,
    /// Set by [`fetch`](Staging::fetch): from then on the folder is this start's, and removed
    /// with it. (A request refused before, e.g. for a duplicate name, leaves the folder of the
    /// job that holds the name alone.)
    owned: bool,
}

/// A manifest on S3, staged.
struct Manifest {
    uri: S3Uri,
    /// Where the objects it lists go, each at its path in the manifest.
    folder: PathBuf,
    /// For a transform job: the local manifest written there, which lists the same paths below
    /// `folder` (the job reads a manifest). A training channel reads `folder` as a prefix.
    local: Option<PathBuf>,
}

impl Artifacts {
    pub fn new(s3: S3, state_dir: &Path, max_bytes: u64) -> Artifacts {
        Artifacts {
            s3,
            dir: state_dir.join("staging"),
            max_bytes,
            starts: AtomicU64::new(0),
        }
    }

    /// How many bytes one job or model start may download.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Removes what the last run left in the staging folder (its jobs were interrupted).
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// CreateTrainingJob: each channel on S3 is staged as a folder of its objects, the output
    /// path on S3 as a local folder uploaded when the job completes.
    pub fn training(
        &self,
        name: &str,
        region: &str,
        request: &mut Map<String, Value>,
    ) -> Result<Staging, ApiError> {
        let mut staging = Staging::in_folder(self.dir.join("training-job").join(name));
        if let Some(Value::Array(channels)) = request.get_mut("InputDataConfig") {
            for (i, channel) in channels.iter_mut().enumerate() {
                let Some(source) = channel.pointer_mut("/DataSource/S3DataSource") else {
                    continue;
                };
                let Some(uri) = s3_member(source, "S3Uri", region)? else {
                    continue;
                };
                let data_type = data_type(source, &uri)?;
                let folder = staging.path(&format!("input/{i}"));
                // `fit` reads a channel's folder when the job is created: it is there, empty
                // until the job downloads its objects.
                std::fs::create_dir_all(&folder)
                    .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", folder.display())))?;
                source["S3Uri"] = file_uri(&folder);
                match data_type {
                    DataType::Prefix => staging.prefixes.push((uri, folder)),
                    DataType::Manifest => {
                        // The channel's folder holds what the manifest lists, as the service
                        // lays it out: the job reads it as a prefix.
                        source["S3DataType"] = json!("S3Prefix");
                        staging.manifests.push(Manifest {
                            uri,
                            folder,
                            local: None,
                        });
                    }
                }
            }
        }
        stage_output(&mut staging, request.get_mut("OutputDataConfig"), region)?;
        Ok(staging)
    }

    /// CreateTransformJob: the input prefix on S3 is staged as a folder of its objects (so the
    /// output mirrors their keys), the output path as a local folder uploaded at the end.
    pub fn transform(
        &self,
        name: &str,
        region: &str,
        request: &mut Map<String, Value>,
    ) -> Result<Staging, ApiError> {
        let mut staging = Staging::in_folder(self.dir.join("transform-job").join(name));
        let input = request
            .get_mut("TransformInput")
            .and_then(|input| input.pointer_mut("/DataSource/S3DataSource"));
        if let Some(source) = input {
            if let Some(uri) = s3_member(source, "S3Uri", region)? {
                let folder = staging.path("input");
                match data_type(source, &uri)? {
                    DataType::Prefix => {
                        source["S3Uri"] = file_uri(&folder);
                        staging.prefixes.push((uri, folder));
                    }
                    DataType::Manifest => {
                        // A local manifest listing the same paths: each output mirrors the
                        // path its input has in the manifest, as the service writes it.
                        let local = staging.path("input.manifest");
                        source["S3Uri"] = file_uri(&local);
                        staging.manifests.push(Manifest {
                            uri,
                            folder,
                            local: Some(local),
                        });
                    }
                }
            }
        }
        stage_output(&mut staging, request.get_mut("TransformOutput"), region)?;
        Ok(staging)
    }

    /// A model's containers with each `ModelDataUrl` on S3 staged as a local `model.tar.gz`, or,
    /// for a multi-model container, as a local folder of target models fetched on first use.
    pub fn model(&self, region: &str, request: &mut Map<String, Value>) -> Result<Staging, ApiError> {
        let start = self.starts.fetch_add(1, Ordering::Relaxed);
        let mut staging = Staging::in_folder(self.dir.join("models").join(start.to_string()));
        let mut containers: Vec<&mut Value> = Vec::new();
        for (member, value) in request.iter_mut() {
            match (member.as_str(), value) {
                ("PrimaryContainer", container) => containers.push(container),
                ("Containers", Value::Array(list)) => containers.extend(list.iter_mut()),
                _ => {}
            }
        }
        for (i, container) in containers.into_iter().enumerate() {
            let Some(uri) = s3_member(container, "ModelDataUrl", region)? else {
                continue;
            };
            if container.get("Mode").and_then(Value::as_str) == Some("MultiModel") {
                let folder = staging.path(&format!("{i}/models"));
                container["ModelDataUrl"] = file_uri(&folder);
                staging.multi_model = Some((uri, folder));
            } else {
                let file = staging.path(&format!("{i}/model.tar.gz"));
                container["ModelDataUrl"] = file_uri(&file);
                staging.objects.push((uri, file));
            }
        }
        Ok(staging)
    }
}

impl Staging {
    fn in_folder(root: PathBuf) -> Staging {
        Staging {
            root,
            prefixes: Vec::new(),
            objects: Vec::new(),
            manifests: Vec::new(),
            multi_model: None,
            upload: None,
            owned: false,
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// CreateModel: every `ModelDataUrl` on S3 must exist, as the service checks.
    pub fn check_objects(&self, artifacts: &Artifacts) -> Result<(), ApiError> {
        for (uri, _) in &self.objects {
            match artifacts.s3.exists(uri) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(ApiError::validation(format!(
                        "Could not find model data at {uri}."
                    )))
                }
                Err(e) => return Err(ApiError::validation(e.to_string())),
            }
        }
        Ok(())
    }

    /// Downloads what the job or model reads, at most the server's bound in all.
    pub fn fetch(&mut self, artifacts: &Artifacts) -> Result<(), StagingError> {
        self.owned = true;
        // What an earlier start of the same job left is not read back in.
        for (_, folder) in &self.prefixes {
            let _ = std::fs::remove_dir_all(folder);
        }
        let mut left = artifacts.max_bytes;
        for (uri, file) in &self.objects {
            left -= artifacts.s3.download(uri, file, left)?;
        }
        for (uri, folder) in &self.prefixes {
            create_folder(folder)?;
            left -= artifacts.s3.download_prefix(uri, folder, left)?;
        }
        for manifest in &self.manifests {
            let _ = std::fs::remove_dir_all(&manifest.folder);
            let listed = super::manifest::download(&artifacts.s3, &manifest.uri, &manifest.folder, left)?;
            left -= listed.bytes;
            if let Some(local) = &manifest.local {
                listed.write_local(local, &manifest.folder)?;
            }
        }
        if let Some((_, folder)) = &self.multi_model {
            create_folder(folder)?;
        }
        Ok(())
    }

    /// The `ModelDataUrl` prefix on S3 of a multi-model container, and the local folder its
    /// target models are fetched into.
    pub fn multi_model(&self) -> Option<&(S3Uri, PathBuf)> {
        self.multi_model.as_ref()
    }

    /// Uploads what the job wrote, when its output path is on S3.
    pub fn publish(&self, artifacts: &Artifacts) -> Result<(), S3Error> {
        let Some((folder, uri)) = &self.upload else {
            return Ok(());
        };
        if folder.is_dir() {
            let count = artifacts.s3.upload_dir(folder, uri)?;
            log::info!("uploaded {count} files to {uri}");
        }
        Ok(())
    }

    /// Where a file the job wrote in its output folder went on S3; `None` for one not on S3.
    pub fn s3_location(&self, local: &Path) -> Option<String> {
        let (folder, uri) = self.upload.as_ref()?;
        let relative = local.strip_prefix(folder).ok()?;
        let parts: Vec<_> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect();
        Some(uri.join(&parts.join("/")).to_string())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("cannot remove {}: {e}", self.root.display());
            }
        }
    }
}

/// An `S3OutputPath` on S3 becomes the local folder `output`, uploaded when the job ends.
fn stage_output(staging: &mut Staging, output: Option<&mut Value>, region: &str) -> Result<(), ApiError> {
    let Some(output) = output else {
        return Ok(());
    };
    if let Some(uri) = s3_member(output, "S3OutputPath", region)? {
        let folder = staging.path("output");
        output["S3OutputPath"] = file_uri(&folder);
        staging.upload = Some((folder, uri));
    }
    Ok(())
}

/// Creates a folder that downloads go into.
fn create_folder(folder: &Path) -> Result<(), S3Error> {
    std::fs::create_dir_all(folder).map_err(|error| S3Error::Create {
        path: folder.to_path_buf(),
        error,
    })
}

/// The `s3://` location in `member` of `value`, if it holds one.
fn s3_member(value: &Value, member: &str, region: &str) -> Result<Option<S3Uri>, ApiError> {
    match value
        .get(member)
        .and_then(Value::as_str)
        .and_then(|uri| S3Uri::parse(uri, region))
    {
        None => Ok(None),
        Some(parsed) => parsed.map(Some).map_err(|e| ApiError::validation(e.to_string())),
    }
}

/// How S3 data is named: a prefix, or a manifest listing the objects.
enum DataType {
    Prefix,
    Manifest,
}

/// `S3Prefix` and `ManifestFile` data are staged. (`ShardedByS3Key` needs nothing: one instance
/// reads every shard, as one instance of the service does.)
fn data_type(source: &Value, uri: &S3Uri) -> Result<DataType, ApiError> {
    match source.get("S3DataType").and_then(Value::as_str) {
        None | Some("S3Prefix") => Ok(DataType::Prefix),
        Some("ManifestFile") => Ok(DataType::Manifest),
        Some(other) => Err(ApiError::validation(format!(
            "S3DataType {} of {uri} is not supported by modelstage api; use S3Prefix or ManifestFile",
            quote(other)
        ))),
    }
}

fn file_uri(path: &Path) -> Value {
    json!(format!("file://{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifacts(dir: &Path) -> Artifacts {
        Artifacts::new(S3::from_env().unwrap(), dir, 1_000)
    }

    fn request(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn s3_locations_of_a_training_job_become_staging_folders() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = artifacts(dir.path());
        let mut job = request(json!({
            "InputDataConfig": [
                {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://bkt/data/a.csv"}}},
                {"ChannelName": "local", "DataSource": {"S3DataSource": {"S3Uri": "file:///data"}}},
            ],
            "OutputDataConfig": {"S3OutputPath": "s3://bkt/jobs"},
        }));
        let staging = artifacts.training("job-1", "us-east-1", &mut job).unwrap();
        let root = dir.path().join("staging/training-job/job-1");
        let channel = &job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"];
        assert_eq!(channel, &file_uri(&root.join("input/0")));
        assert!(
            root.join("input/0").is_dir(),
            "fit reads the channel's folder when the job is created"
        );
        assert_eq!(
            job["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3Uri"],
            "file:///data"
        );
        assert_eq!(
            job["OutputDataConfig"]["S3OutputPath"],
            file_uri(&root.join("output"))
        );
        let model = root.join("output/job-1/output/model.tar.gz");
        assert_eq!(
            staging.s3_location(&model).as_deref(),
            Some("s3://bkt/jobs/job-1/output/model.tar.gz")
        );
        assert_eq!(staging.s3_location(Path::new("/elsewhere/model.tar.gz")), None);
    }

    #[test]
    fn an_augmented_manifest_on_s3_and_a_bucketless_uri_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = artifacts(dir.path());
        let mut job = request(json!({
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "AugmentedManifestFile", "S3Uri": "s3://bkt/m"}}},
            "TransformOutput": {"S3OutputPath": "s3://bkt/out"},
        }));
        let e = artifacts.transform("t", "us-east-1", &mut job).err().unwrap();
        assert!(
            e.message.contains("AugmentedManifestFile") && e.message.contains("S3Prefix or ManifestFile"),
            "{}",
            e.message
        );
        let mut model = request(json!({"PrimaryContainer": {"ModelDataUrl": "s3:///model.tar.gz"}}));
        let e = artifacts.model("us-east-1", &mut model).err().unwrap();
        assert!(e.message.contains("does not name an S3 bucket"), "{}", e.message);
    }

    #[test]
    fn each_model_start_stages_its_model_data_apart() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = artifacts(dir.path());
        let description = json!({
            "Containers": [
                {"Image": "a.so", "ModelDataUrl": "s3://bkt/a/model.tar.gz"},
                {"Image": "b.so", "ModelDataUrl": "file:///m/b.tar.gz"},
            ],
        });
        let mut first = request(description.clone());
        let mut second = request(description);
        artifacts.model("us-east-1", &mut first).unwrap();
        artifacts.model("us-east-1", &mut second).unwrap();
        let a = first["Containers"][0]["ModelDataUrl"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(a.starts_with("file://") && a.ends_with("/model.tar.gz"), "{a}");
        assert_ne!(a, second["Containers"][0]["ModelDataUrl"].as_str().unwrap());
        assert_eq!(first["Containers"][1]["ModelDataUrl"], "file:///m/b.tar.gz");
    }

    #[test]
    fn a_multi_model_prefix_and_manifests_on_s3_are_staged_apart() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = artifacts(dir.path());
        let mut model = request(json!({
            "PrimaryContainer": {"Image": "a.so", "Mode": "MultiModel", "ModelDataUrl": "s3://bkt/models/"},
        }));
        let staging = artifacts.model("us-east-1", &mut model).unwrap();
        let (uri, folder) = staging.multi_model().unwrap();
        assert_eq!(uri.to_string(), "s3://bkt/models/");
        assert_eq!(model["PrimaryContainer"]["ModelDataUrl"], file_uri(folder));
        assert!(
            staging.objects.is_empty(),
            "target models are fetched on first use"
        );

        let mut job = request(json!({
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "ManifestFile", "S3Uri": "s3://bkt/train.manifest",
                "S3DataDistributionType": "ShardedByS3Key"}}}],
            "OutputDataConfig": {"S3OutputPath": "s3://bkt/jobs"},
        }));
        let staging = artifacts.training("job", "us-east-1", &mut job).unwrap();
        let source = &job["InputDataConfig"][0]["DataSource"]["S3DataSource"];
        assert_eq!(
            source["S3DataType"], "S3Prefix",
            "the channel's folder holds what it lists"
        );
        assert_eq!(staging.manifests.len(), 1);
        assert_eq!(source["S3Uri"], file_uri(&staging.manifests[0].folder));

        let mut transform = request(json!({
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://bkt/in.manifest"}}},
        }));
        let staging = artifacts.transform("t", "us-east-1", &mut transform).unwrap();
        let source = &transform["TransformInput"]["DataSource"]["S3DataSource"];
        assert_eq!(source["S3DataType"], "ManifestFile");
        let local = staging.manifests[0].local.as_ref().unwrap();
        assert_eq!(source["S3Uri"], file_uri(local));
    }
}
