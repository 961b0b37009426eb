//! The memory budget of a multi-model endpoint: how much the server and its
//! worker processes may hold, and what they hold now.
//!
//! The budget is `MODELSTAGE_MME_MEMORY_MB`, else a share of the memory the
//! container may use: its cgroup's limit (v2 `memory.max`, v1
//! `memory.limit_in_bytes`), else the machine's memory. What the endpoint
//! holds is the resident memory of the server process and of every worker,
//! read from `/proc/<pid>/status` (what the kernel's out-of-memory killer
//! weighs, and what the container's limit counts: the server's request
//! bodies share it with the models). A model's cost is what its load added to
//! that; a load is admitted when what is held now plus the average cost of a
//! model fits.

use std::path::{Path, PathBuf};

use super::super::config::{env_var, ConfigError};

/// The variable that sets the budget in MB (`0`: no budget; unset: a
/// share of the container's memory).
pub const ENV_MEMORY: &str = "MODELSTAGE_MME_MEMORY_MB";

const MB: u64 = 1024 * 1024;

/// The share of the container's memory the server and its workers may use
/// by default: the rest is the page cache's and the headroom's.
const DEFAULT_SHARE_PERCENT: u64 = 70;

/// The budget in bytes (`None`: no budget), and where it came from, for
/// the start-up log line.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Bytes the server and its workers may hold in all; `None`: no budget.
    pub limit: Option<u64>,
    /// Where the limit came from, as the log line and the 507 say it.
    pub source: String,
}

impl Budget {
    /// `MODELSTAGE_MME_MEMORY_MB` (0: no budget), else the default share.
    pub fn read() -> Result<Budget, ConfigError> {
        match env_var(ENV_MEMORY) {
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => Ok(Budget {
                    limit: None,
                    source: format!("{ENV_MEMORY}=0: no budget"),
                }),
                Ok(mb) => Ok(Budget {
                    limit: Some(mb.saturating_mul(MB)),
                    source: ENV_MEMORY.to_string(),
                }),
                Err(_) => Err(ConfigError::invalid(ENV_MEMORY, "a whole number of MB", v)),
            },
            None => Ok(match container_memory() {
                Some((bytes, from)) => Budget {
                    limit: Some(bytes / 100 * DEFAULT_SHARE_PERCENT),
                    source: format!("{DEFAULT_SHARE_PERCENT}% of {} MB ({from})", bytes / MB),
                },
                None => Budget {
                    limit: None,
                    source: "no memory limit found: no budget".to_string(),
                },
            }),
        }
    }

    /// The limit in MB, for the start-up log line.
    pub fn limit_mb(&self) -> Option<u64> {
        self.limit.map(|b| b / MB)
    }
}

/// The memory this container may use and where that was read.
fn container_memory() -> Option<(u64, String)> {
    cgroup_limit().or_else(|| {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        kib_field(&meminfo, "MemTotal:").map(|b| (b, "the machine's memory".to_string()))
    })
}

/// The memory limit of this process's cgroup, if it has one.
fn cgroup_limit() -> Option<(u64, String)> {
    let root = Path::new("/sys/fs/cgroup");
    // cgroup v2: this process's own group (`0::/path`), then the root a
    // container sees as its own.
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .map(|p| root.join(p.trim_start_matches('/')))
        });
    let mut candidates: Vec<PathBuf> = own.into_iter().map(|d| d.join("memory.max")).collect();
    candidates.push(root.join("memory.max"));
    candidates.push(root.join("memory/memory.limit_in_bytes"));
    candidates.into_iter().find_map(|file| {
        let text = std::fs::read_to_string(&file).ok()?;
        let bytes: u64 = text.trim().parse().ok()?;
        // v1 writes a huge number for "no limit".
        (bytes < (1u64 << 60)).then(|| (bytes, format!("the cgroup limit in {}", file.display())))
    })
}

/// A `Name:   123 kB` field of a `/proc` status file, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The resident memory of process `pid` in bytes; 0 once it is gone.
pub fn resident(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| kib_field(&s, "VmRSS:"))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let status = "Name:\tworker\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(2048 * 1024));
        assert_eq!(kib_field(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_resident_memory() {
        assert!(resident(std::process::id()) > 0);
        assert!(container_memory().is_some());
    }
}
