//! Artifacts on `s3://` for the jobs and models of `modelstage api`. The code behind `fit`,
//! `transform` and `deploy` reads and writes local paths only, so a request's `s3://` locations
//! are rewritten to `file://` locations in a staging folder of the state folder, one per job or
//! model start ([`Staging`]): what is read is downloaded there before the job starts, what is
//! written is uploaded when it ends, and the folder is removed with the [`Staging`]. A
//! `model.tar.gz` downloaded this way is unpacked by the same code, with the same bounds, as a
//! local one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::s3::{S3Uri, S3};
use super::wire::{quote, ApiError};

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
    /// A local output folder and where it goes.
    upload: Option<(PathBuf, S3Uri)>,
    /// Set by [`fetch`](Staging::fetch): from then on the folder is this start's, and removed
    /// with it. (A request refused before, e.g. for a duplicate name, leaves the folder of the
    /// job that holds the name alone.)
    owned: bool,
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
                prefix_only(source, &uri)?;
                let folder = staging.path(&format!("input/{i}"));
                // `fit` reads a channel's folder when the job is created: it is there, empty
                // until the job downloads its objects.
                std::fs::create_dir_all(&folder)
                    .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", folder.display())))?;
                source["S3Uri"] = file_uri(&folder);
                staging.prefixes.push((uri, folder));
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
                prefix_only(source, &uri)?;
                let folder = staging.path("input");
                source["S3Uri"] = file_uri(&folder);
                staging.prefixes.push((uri, folder));
            }
        }
        stage_output(&mut staging, request.get_mut("TransformOutput"), region)?;
        Ok(staging)
    }

    /// A model's containers with each `ModelDataUrl` on S3 staged as a local `model.tar.gz`.
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
            if let Some(uri) = s3_member(container, "ModelDataUrl", region)? {
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
                Err(e) => return Err(ApiError::validation(e)),
            }
        }
        Ok(())
    }

    /// Downloads what the job or model reads, at most the server's bound in all.
    pub fn fetch(&mut self, artifacts: &Artifacts) -> Result<(), String> {
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
            std::fs::create_dir_all(folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
            left -= artifacts.s3.download_prefix(uri, folder, left)?;
        }
        Ok(())
    }

    /// Uploads what the job wrote, when its output path is on S3.
    pub fn publish(&self, artifacts: &Artifacts) -> Result<(), String> {
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

/// The `s3://` location in `member` of `value`, if it holds one.
fn s3_member(value: &Value, member: &str, region: &str) -> Result<Option<S3Uri>, ApiError> {
    match value
        .get(member)
        .and_then(Value::as_str)
        .and_then(|uri| S3Uri::parse(uri, region))
    {
        None => Ok(None),
        Some(parsed) => parsed.map(Some).map_err(ApiError::validation),
    }
}

/// Only `S3Prefix` data is staged; a manifest on S3 would name further S3 objects.
fn prefix_only(source: &Value, uri: &S3Uri) -> Result<(), ApiError> {
    match source.get("S3DataType").and_then(Value::as_str) {
        None | Some("S3Prefix") => Ok(()),
        Some(other) => Err(ApiError::validation(format!(
            "S3DataType {} of {uri} is not supported by modelstage api; use S3Prefix",
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
    fn a_manifest_on_s3_and_a_bucketless_uri_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = artifacts(dir.path());
        let mut job = request(json!({
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://bkt/m"}}},
            "TransformOutput": {"S3OutputPath": "s3://bkt/out"},
        }));
        let e = artifacts.transform("t", "us-east-1", &mut job).err().unwrap();
        assert!(
            e.message.contains("ManifestFile") && e.message.contains("S3Prefix"),
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
}
