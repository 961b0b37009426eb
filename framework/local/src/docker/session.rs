//! Cleaning up: every container and network this process starts carries the label
//! `com.modelstage.session=<id>`, so [`cleanup_labelled`] removes all of them in one go. A
//! [`Session`] does that when it is dropped and, through a small watchdog process, also when this
//! process dies without unwinding (Ctrl-C, SIGTERM, SIGKILL, abort).

use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use super::cli;
use super::DockerError;

/// The label naming the session a container or network belongs to.
pub const SESSION_LABEL: &str = "com.modelstage.session";
/// The label on everything modelstage starts, whatever the session.
pub const MANAGED_LABEL: &str = "com.modelstage.managed";

/// What [`cleanup_labelled`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanup {
    pub containers: usize,
    pub networks: usize,
}

/// A fresh session id: `ms-<pid>-<time>`, unique on one machine and valid in container and
/// network names.
pub fn new_session_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("ms-{}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Removes every container (running or not) and then every network labelled with `session`.
pub fn cleanup_labelled(session: &str) -> Result<Cleanup, DockerError> {
    let filter = format!("label={SESSION_LABEL}={session}");
    let containers = ids(&["ps", "--all", "--quiet", "--filter", &filter])?;
    if !containers.is_empty() {
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(containers.iter().map(String::as_str));
        cli::run(&args)?;
    }
    let networks = ids(&["network", "ls", "--quiet", "--filter", &filter])?;
    if !networks.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(networks.iter().map(String::as_str));
        cli::run(&args)?;
    }
    Ok(Cleanup {
        containers: containers.len(),
        networks: networks.len(),
    })
}

fn ids(args: &[&str]) -> Result<Vec<String>, DockerError> {
    Ok(cli::run(args)?.split_whitespace().map(str::to_string).collect())
}

/// A user-defined bridge network, removed when dropped. Containers on it reach each other by
/// name and alias (as the services of a compose file do).
#[derive(Debug)]
pub struct Network {
    name: String,
    removed: bool,
}

impl Network {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes it now and reports a failure (it fails while containers are still attached).
    pub fn remove(mut self) -> Result<(), DockerError> {
        self.removed = true;
        remove_network(&self.name)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove_network(&self.name) {
                log::warn!("{e}");
            }
        }
    }
}

/// Creates the network `name`, labelled with `session`.
pub fn create_network(name: &str, session: &str) -> Result<Network, DockerError> {
    cli::run(&[
        "network",
        "create",
        "--label",
        &format!("{MANAGED_LABEL}=true"),
        "--label",
        &format!("{SESSION_LABEL}={session}"),
        name,
    ])
    .map_err(|e| e.context(&format!("cannot create network {name}")))?;
    Ok(Network {
        name: name.to_string(),
        removed: false,
    })
}

/// Removes the network `name`; one that is already gone is not an error.
pub fn remove_network(name: &str) -> Result<(), DockerError> {
    match cli::run(&["network", "rm", name]) {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("not found") => Ok(()),
        Err(e) => Err(e.context(&format!("cannot remove network {name}"))),
    }
}

/// The lifetime of a group of containers and networks. Give its [`id`](Session::id) to every
/// [`ContainerSpec`](super::ContainerSpec) (`.session(id)`) and to [`create_network`]; when the
/// session is dropped, all of them are removed. If this process dies first (Ctrl-C, a signal, a
/// crash), a watchdog process it started removes them within about a second.
#[derive(Debug)]
pub struct Session {
    id: String,
    watchdog: Option<Child>,
}

/// The watchdog: waits for the owning process to go, then removes what carries the session
/// label. Arguments: owner pid, docker command, label name, session id.
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
ids=$("$2" ps -aq --filter "label=$3=$4")
[ -n "$ids" ] && "$2" rm -f -v $ids >/dev/null 2>&1
nets=$("$2" network ls -q --filter "label=$3=$4")
[ -n "$nets" ] && "$2" network rm $nets >/dev/null 2>&1
exit 0
"#;

impl Session {
    /// A new session with its watchdog.
    pub fn start() -> Result<Session, DockerError> {
        let id = new_session_id();
        let watchdog = spawn_watchdog(&id)?;
        Ok(Session {
            id,
            watchdog: Some(watchdog),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Removes everything of the session now (also done on drop).
    pub fn cleanup(&self) -> Result<Cleanup, DockerError> {
        cleanup_labelled(&self.id)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        match self.cleanup() {
            Ok(done) if done != Cleanup::default() => log::debug!(
                "session {}: removed {} container(s) and {} network(s)",
                self.id,
                done.containers,
                done.networks
            ),
            Ok(_) => {}
            Err(e) => log::warn!("session {}: {e}", self.id),
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

fn spawn_watchdog(id: &str) -> Result<Child, DockerError> {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .args(["-c", WATCHDOG, "modelstage-cleanup"])
        .arg(std::process::id().to_string())
        .arg(cli::program())
        .arg(SESSION_LABEL)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: the Ctrl-C that stops this process must not stop the watchdog.
        .process_group(0)
        .spawn()
        .map_err(|e| DockerError::new(format!("cannot start the cleanup watchdog (sh): {e}")))
}
