//! What to run: [`ContainerSpec`], and its translation into a `docker run` command line, checked
//! before anything starts so that a bad value is reported with its name instead of as a Docker
//! usage error.

use std::path::{Path, PathBuf};

use super::session::{MANAGED_LABEL, SESSION_LABEL};
use super::DockerError;

/// Where SageMaker mounts the job's tree in a container (docs/contract.md (Training, Serving)).
pub const OPT_ML: &str = "/opt/ml";
/// Where a serving container finds its model.
pub const MODEL_DIR: &str = "/opt/ml/model";
/// Where a multi-model serving container finds the models the platform unpacked for it.
pub const MODELS_DIR: &str = "/opt/ml/models";
/// The port a serving container listens on unless `SAGEMAKER_BIND_TO_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// A host folder or file seen inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// An existing absolute path on the machine that runs the engine.
    pub host: PathBuf,
    /// An absolute path inside the container.
    pub container: String,
    pub read_only: bool,
}

/// One container to start, as SageMaker would start it: the image, the arguments that follow it
/// (`train` or `serve`), its environment, the `/opt/ml` folders mounted, and how it is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// An image reference, e.g. `modelstage/featurizer:latest`.
    pub image: String,
    /// A container name; `None` lets Docker choose. Names must be unique on the engine.
    pub name: Option<String>,
    /// The arguments after the image: `["train"]` or `["serve"]` for SageMaker images.
    pub args: Vec<String>,
    /// Replaces the image's ENTRYPOINT (CreateTrainingJob's `ContainerEntrypoint`).
    pub entrypoint: Option<String>,
    /// Environment variables, in order; a later one with the same name wins.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// A network to join: a user-defined network's name, or `container:<id>` to share another
    /// container's network namespace (as the containers of one pipeline instance do on SageMaker).
    pub network: Option<String>,
    /// The name the container answers to on `network` (needs a user-defined network).
    pub network_alias: Option<String>,
    /// `(host_port, container_port)`, published on 127.0.0.1 only; host port 0 lets the engine
    /// choose a free one ([`Container::host_port`](super::Container::host_port) tells which).
    pub publish: Vec<(u16, u16)>,
    /// `user[:group]` to run as; `None` runs as the image's user (root, as SageMaker does).
    pub user: Option<String>,
    /// Extra labels.
    pub labels: Vec<(String, String)>,
    /// The session the container belongs to: it is labelled with it, so
    /// [`cleanup_labelled`](super::cleanup_labelled) finds it.
    pub session: Option<String>,
}

impl ContainerSpec {
    /// A container of `image` with nothing else set.
    pub fn new(image: impl Into<String>) -> ContainerSpec {
        ContainerSpec {
            image: image.into(),
            ..ContainerSpec::default()
        }
    }

    /// `docker run IMAGE train` with the host tree `base_dir` mounted at `/opt/ml`, as a training
    /// job runs (docs/contract.md (Training)).
    pub fn training(image: impl Into<String>, base_dir: &Path) -> ContainerSpec {
        ContainerSpec::new(image).arg("train").mount(base_dir, OPT_ML)
    }

    /// `docker run IMAGE serve` with `model_dir` mounted at `/opt/ml/model`, listening on
    /// `port` inside the container (`SAGEMAKER_BIND_TO_PORT` is set when it is not 8080) and
    /// published on a free port of 127.0.0.1.
    pub fn serving(image: impl Into<String>, model_dir: &Path, port: u16) -> ContainerSpec {
        let mut spec = ContainerSpec::new(image).arg("serve").mount(model_dir, MODEL_DIR);
        if port != DEFAULT_PORT {
            spec = spec.env("SAGEMAKER_BIND_TO_PORT", port.to_string());
        }
        spec.publish(0, port)
    }

    /// `docker run IMAGE serve` on the host's network, listening on `port` of the host through
    /// `SAGEMAKER_BIND_TO_PORT`, as the containers of one SageMaker instance share its network.
    /// Starts faster and answers faster than a published port (no NAT, no proxy process; see
    /// docker/README.md), but needs a free host port and a Linux engine (Docker Desktop's host
    /// network is its VM's).
    pub fn serving_on_host_network(image: impl Into<String>, model_dir: &Path, port: u16) -> ContainerSpec {
        ContainerSpec::new(image)
            .arg("serve")
            .mount(model_dir, MODEL_DIR)
            .env("SAGEMAKER_BIND_TO_PORT", port.to_string())
            .network("host", None)
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A read-write bind mount.
    pub fn mount(mut self, host: &Path, container: impl Into<String>) -> Self {
        self.mounts.push(Mount {
            host: host.to_path_buf(),
            container: container.into(),
            read_only: false,
        });
        self
    }

    /// A read-only bind mount.
    pub fn mount_read_only(mut self, host: &Path, container: impl Into<String>) -> Self {
        self.mounts.push(Mount {
            host: host.to_path_buf(),
            container: container.into(),
            read_only: true,
        });
        self
    }

    pub fn publish(mut self, host_port: u16, container_port: u16) -> Self {
        self.publish.push((host_port, container_port));
        self
    }

    pub fn network(mut self, network: impl Into<String>, alias: Option<String>) -> Self {
        self.network = Some(network.into());
        self.network_alias = alias;
        self
    }

    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    /// The `docker run` arguments that start this container detached, after checking every value.
    pub fn run_args(&self) -> Result<Vec<String>, DockerError> {
        let image = self.image.trim();
        if image.is_empty() {
            return Err(DockerError::new("no image given for the container"));
        }
        if image.starts_with('-') || image.chars().any(char::is_whitespace) {
            return Err(DockerError::new(format!(
                "'{}' is not an image reference",
                self.image
            )));
        }
        let mut args: Vec<String> = vec!["run".into(), "--detach".into()];
        // Never pull: an image that is not here should fail at once with a clear message, not
        // wait on a registry that may not be reachable.
        args.extend(["--pull".into(), "never".into()]);
        if let Some(name) = &self.name {
            check_name(name)?;
            args.extend(["--name".into(), name.clone()]);
        }
        args.extend(["--label".into(), format!("{MANAGED_LABEL}=true")]);
        if let Some(session) = &self.session {
            args.extend(["--label".into(), format!("{SESSION_LABEL}={session}")]);
        }
        for (key, value) in &self.labels {
            if key.is_empty() || key.contains('=') {
                return Err(DockerError::new(format!(
                    "label name '{key}' is empty or contains '='"
                )));
            }
            args.extend(["--label".into(), format!("{key}={value}")]);
        }
        for (name, value) in &self.env {
            check_env(name, value)?;
            args.extend(["--env".into(), format!("{name}={value}")]);
        }
        for mount in &self.mounts {
            args.extend(["--mount".into(), mount_arg(mount)?]);
        }
        if let Some(network) = &self.network {
            args.extend(["--network".into(), network.clone()]);
        }
        if let Some(alias) = &self.network_alias {
            match &self.network {
                Some(n) if !n.starts_with("container:") && n != "host" && n != "none" => {
                    args.extend(["--network-alias".into(), alias.clone()]);
                }
                _ => {
                    return Err(DockerError::new(format!(
                        "network alias '{alias}' needs a user-defined network (see create_network)"
                    )))
                }
            }
        }
        let own_network =
            matches!(self.network.as_deref(), Some(n) if n == "host" || n.starts_with("container:"));
        if own_network && !self.publish.is_empty() {
            // Docker would drop the ports with only a warning; the caller would wait on a port
            // that never opens.
            return Err(DockerError::new(format!(
                "ports cannot be published on network '{}': the container listens on that network \
                 directly (set SAGEMAKER_BIND_TO_PORT instead)",
                self.network.as_deref().unwrap_or_default()
            )));
        }
        for (host_port, container_port) in &self.publish {
            if *container_port == 0 {
                return Err(DockerError::new("cannot publish container port 0"));
            }
            let host = if *host_port == 0 {
                String::new()
            } else {
                host_port.to_string()
            };
            args.extend(["--publish".into(), format!("127.0.0.1:{host}:{container_port}")]);
        }
        if let Some(user) = &self.user {
            args.extend(["--user".into(), user.clone()]);
        }
        if let Some(entrypoint) = &self.entrypoint {
            args.extend(["--entrypoint".into(), entrypoint.clone()]);
        }
        args.push(image.to_string());
        args.extend(self.args.iter().cloned());
        Ok(args)
    }
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn check_name(name: &str) -> Result<(), DockerError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DockerError::new(format!(
            "'{name}' is not a valid container name (letters, digits, '_', '.', '-'; starting with a letter or digit)"
        )))
    }
}

fn check_env(name: &str, value: &str) -> Result<(), DockerError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(DockerError::new(format!(
            "environment variable name '{name}' is empty or contains '=' or NUL"
        )));
    }
    if value.contains('\0') {
        return Err(DockerError::new(format!(
            "the value of environment variable {name} contains a NUL character"
        )));
    }
    Ok(())
}

/// `--mount type=bind,source=…,target=…[,readonly]`. Docker reads the value as one CSV record,
/// so a field holding a comma or a quote is quoted (a `-v a:b` form would break on ':').
fn mount_arg(mount: &Mount) -> Result<String, DockerError> {
    let host = &mount.host;
    if !host.is_absolute() {
        return Err(DockerError::new(format!(
            "mount source {} must be an absolute path",
            host.display()
        )));
    }
    if !host.exists() {
        return Err(DockerError::new(format!(
            "mount source {} does not exist",
            host.display()
        )));
    }
    let Some(host_text) = host.to_str() else {
        return Err(DockerError::new(format!(
            "mount source {} is not valid UTF-8, which docker cannot take",
            host.display()
        )));
    };
    if !mount.container.starts_with('/') {
        return Err(DockerError::new(format!(
            "mount target '{}' must be an absolute path inside the container",
            mount.container
        )));
    }
    let mut fields = vec![
        "type=bind".to_string(),
        csv_field(&format!("source={host_text}")),
        csv_field(&format!("target={}", mount.container)),
    ];
    if mount.read_only {
        fields.push("readonly".to_string());
    }
    Ok(fields.join(","))
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
