//! The training container as a Docker container: `docker run IMAGE train` with the tree mounted
//! at `/opt/ml`, as SageMaker runs a training image (docs/contract.md (Training)). The container sees
//! `/opt/ml`, so `SAGEMAKER_BASE_DIR` is not set. Everything runs in a [`docker::Session`]: the
//! container is removed when the job ends, fails or is stopped, and by the session's watchdog if
//! `fit` itself is killed.
//!
//! This is [`docker::run_to_completion`] plus a stop: the container is stopped as StopTrainingJob
//! stops one (SIGTERM, then SIGKILL after a grace period), so that the stage can write why it
//! stopped into `output/failure`, as it does when it runs as a process.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use super::TrainingExit;
use crate::docker::{self, ContainerSpec};
use crate::fit::request::TrainingJob;
use crate::fit::stop::Stop;

/// How often the stop flag is checked while the container runs.
const POLL: Duration = Duration::from_millis(50);
/// How long a stopped container has between SIGTERM and SIGKILL. SageMaker gives 120 s; a local
/// job stopped with Ctrl-C gets `docker stop`'s default, and a second Ctrl-C ends `fit` at once
/// (the session's watchdog then removes the container).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The engine answers and has the image.
pub fn check(image: &str) -> anyhow::Result<()> {
    docker::engine_available()
        .map_err(|e| anyhow!("{image} is a Docker image, and Docker is needed to train it: {e}"))?;
    if !docker::image_exists(image) {
        bail!(
            "the image {image} is not on this machine: build it (ci/docker-build.sh builds the \
             modelstage/* images) or `docker pull` it first; nothing is pulled for you"
        );
    }
    Ok(())
}

pub fn run(image: &str, base: &Path, job: &TrainingJob, stop: &Stop) -> anyhow::Result<TrainingExit> {
    let session = docker::Session::start().context("cannot start a Docker session for the training job")?;
    let spec = training_spec(image, base, job, session.id())?;
    let container = match (docker::run_detached(&spec), stop.signal()) {
        (Ok(container), _) => container,
        // Ctrl-C reached `docker run` itself; the session removes a container it may have made.
        (Err(_), Some(signal)) => return Ok(TrainingExit::stopped(signal)),
        (Err(e), None) => {
            return Err(anyhow!(e).context(format!("cannot start the training container of {image}")))
        }
    };

    let finished = AtomicBool::new(false);
    let exit = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            while !finished.load(Ordering::SeqCst) {
                if stop.requested() {
                    eprintln!("Stopping the training container (Ctrl-C again to end at once)");
                    if let Err(e) = container.stop(STOP_GRACE) {
                        log::warn!("cannot stop the training container: {e}");
                    }
                    return;
                }
                std::thread::sleep(POLL);
            }
        });
        // A Ctrl-C in a terminal also ends `docker logs` and `docker wait` (they share our process
        // group) while the container runs on; then wait again for the stop to end it.
        if let Err(e) = container.follow_logs(|line| eprintln!("{line}")) {
            if !stop.requested() {
                log::warn!("the training container's log was cut short: {e}");
            }
        }
        let mut exit = container.wait();
        if exit.is_err() && stop.requested() {
            exit = container.wait();
        }
        finished.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        exit
    });
    if let Err(e) = container.remove() {
        log::warn!("{e}");
    }
    let exit = match (exit, stop.signal()) {
        (Ok(exit), _) if exit.success() => TrainingExit {
            success: true,
            description: exit.to_string(),
            stopped_by: None,
        },
        (_, Some(signal)) => TrainingExit::stopped(signal),
        (Ok(exit), None) => TrainingExit {
            success: false,
            description: exit.to_string(),
            stopped_by: None,
        },
        (Err(e), None) => {
            return Err(anyhow!(e).context(format!("cannot wait for the training container of {image}")))
        }
    };
    // `session` is dropped here: whatever is left of the container goes with it.
    Ok(exit)
}

/// `docker run IMAGE train` on the tree, with the job's environment and name.
fn training_spec(
    image: &str,
    base: &Path,
    job: &TrainingJob,
    session: &str,
) -> anyhow::Result<ContainerSpec> {
    let mut spec = ContainerSpec::training(image, base);
    for (name, value) in &job.environment {
        spec = spec.env(name, value);
    }
    spec = spec.env("TRAINING_JOB_NAME", &job.name).session(session);
    let tree = std::fs::metadata(base).with_context(|| format!("cannot read {}", base.display()))?;
    spec.user = container_user(tree.uid(), tree.gid());
    Ok(spec)
}

/// Who the container runs as. SageMaker runs it as the image's user (root, for our images); when
/// the tree belongs to another user (`fit` not run as root), the container runs as that user, so
/// that what it writes can be packed and removed afterwards.
pub(crate) fn container_user(tree_uid: u32, tree_gid: u32) -> Option<String> {
    (tree_uid != 0).then(|| format!("{tree_uid}:{tree_gid}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::image::TrainingImage;

    #[test]
    fn the_container_runs_as_the_owner_of_the_tree_unless_that_is_root() {
        assert_eq!(container_user(0, 0), None);
        assert_eq!(container_user(1000, 100).as_deref(), Some("1000:100"));
    }

    #[test]
    fn the_spec_mounts_the_tree_and_sets_the_job_environment_without_a_base_dir() {
        let dir = tempfile::tempdir().unwrap();
        let job = TrainingJob {
            name: "job-1".into(),
            image: TrainingImage::Docker("modelstage/echo:latest".into()),
            hyperparameters: Default::default(),
            channels: Vec::new(),
            output_path: dir.path().join("out"),
            environment: [
                ("TRAINING_JOB_NAME".to_string(), "from-request".to_string()),
                ("A".to_string(), "1".to_string()),
            ]
            .into_iter()
            .collect(),
        };
        let spec = training_spec("modelstage/echo:latest", dir.path(), &job, "ms-test").unwrap();
        assert_eq!(spec.args, ["train"]);
        assert_eq!(spec.mounts.len(), 1);
        assert_eq!(spec.mounts[0].host, dir.path());
        assert_eq!(spec.mounts[0].container, "/opt/ml");
        assert!(!spec.mounts[0].read_only);
        assert_eq!(spec.session.as_deref(), Some("ms-test"));
        assert!(
            spec.env.iter().all(|(name, _)| name != "SAGEMAKER_BASE_DIR"),
            "{:?}",
            spec.env
        );
        // The job's name is the last word, as in the process path.
        let value = |name: &str| {
            spec.env
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("TRAINING_JOB_NAME"), Some("job-1"));
        assert_eq!(value("A"), Some("1"));
        let owner = std::fs::metadata(dir.path()).unwrap().uid();
        assert_eq!(spec.user.is_none(), owner == 0);
    }
}
