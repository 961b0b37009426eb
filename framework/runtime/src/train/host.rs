//! Facts about the machine that the toolkit puts into the training environment:
//! CPU, GPU and Neuron core counts, and whether the SageMaker distributed-training
//! launchers are installed.

use std::path::Path;
use std::process::{Command, Stdio};

/// What the environment reports about this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    /// CPUs online (`SM_NUM_CPUS`).
    pub num_cpus: usize,
    /// NVIDIA GPUs (`SM_NUM_GPUS`).
    pub num_gpus: usize,
    /// Neuron cores of the instance type (`SM_NUM_NEURONS`).
    pub num_neurons: usize,
    /// Whether the `smddpmprun` launcher is on `PATH`.
    pub smddpmprun_installed: bool,
    /// Whether the `smddprun` launcher is on `PATH`.
    pub smddprun_installed: bool,
}

impl HostFacts {
    /// Probes the machine. `instance_type` is `current_instance_type` of `resourceconfig.json`.
    pub fn probe(instance_type: &str) -> HostFacts {
        HostFacts {
            num_cpus: num_cpus(),
            num_gpus: num_gpus(),
            num_neurons: num_neurons(instance_type),
            smddpmprun_installed: on_path("smddpmprun"),
            smddprun_installed: on_path("smddprun"),
        }
    }
}

/// Python's `multiprocessing.cpu_count()`: the CPUs online (sysconf `_SC_NPROCESSORS_ONLN`,
/// which glibc reads from `/sys/devices/system/cpu/online`), not the affinity mask.
pub(crate) fn num_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| count_cpu_list(&text))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Counts a kernel CPU list such as `0-3,8,10-11`.
pub(crate) fn count_cpu_list(text: &str) -> Option<usize> {
    let mut total = 0;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        total += match part.split_once('-') {
            Some((lo, hi)) => hi.parse::<usize>().ok()?.checked_sub(lo.parse::<usize>().ok()?)? + 1,
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    (total > 0).then_some(total)
}

/// The toolkit's `num_gpus`: lines starting with `GPU ` in `nvidia-smi --list-gpus`, 0 on failure.
fn num_gpus() -> usize {
    match command_output("nvidia-smi", &["--list-gpus"]) {
        Some(text) => count_gpu_lines(&text),
        None => {
            log::info!("No GPUs detected (normal if no gpus installed)");
            0
        }
    }
}

pub(crate) fn count_gpu_lines(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("GPU ")).count()
}

/// The training toolkit's `num_neurons`: 64 on `trn2.48xlarge`, else the sum of `nc_count`
/// over the devices `neuron-ls -j` lists, 0 on failure.
fn num_neurons(instance_type: &str) -> usize {
    if instance_type == "ml.trn2.48xlarge" || instance_type == "trn2.48xlarge" {
        return 64;
    }
    command_output("neuron-ls", &["-j"])
        .and_then(|text| sum_neuron_cores(&text))
        .unwrap_or(0)
}

pub(crate) fn sum_neuron_cores(json: &str) -> Option<usize> {
    let devices: serde_json::Value = serde_json::from_str(json).ok()?;
    devices
        .as_array()?
        .iter()
        .map(|d| {
            d.get("nc_count")
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as usize)
        })
        .sum()
}

/// The standard output of a command that exited 0, or `None`.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether an executable named `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name))))
        .unwrap_or(false)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-3\n"), Some(4));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("garbage"), None);
        assert_eq!(count_cpu_list(""), None);
    }

    #[test]
    fn gpu_lines() {
        let text = "GPU 0: Tesla T4 (UUID: GPU-1)\nGPU 1: Tesla T4 (UUID: GPU-2)\nNo devices\n";
        assert_eq!(count_gpu_lines(text), 2);
        assert_eq!(count_gpu_lines(""), 0);
    }

    #[test]
    fn neuron_cores() {
        assert_eq!(sum_neuron_cores(r#"[{"nc_count": 2}, {"nc_count": 2}]"#), Some(4));
        assert_eq!(sum_neuron_cores("not json"), None);
        assert_eq!(num_neurons("ml.trn2.48xlarge"), 64);
    }
}
