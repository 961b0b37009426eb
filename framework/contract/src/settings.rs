//! The `SAGEMAKER_*` serving settings the platform sets in a container,
//! their names and defaults (docs/contract.md (Serving)), and the rule for
//! the HTTP threads of a server or a router. The server, local mode's router
//! and local mode's container environment all read these.

/// The port a container serves on.
pub const BIND_TO_PORT: &str = "SAGEMAKER_BIND_TO_PORT";
/// Default of [`BIND_TO_PORT`].
pub const DEFAULT_PORT: u16 = 8080;
/// Worker processes of a server.
pub const MODEL_SERVER_WORKERS: &str = "SAGEMAKER_MODEL_SERVER_WORKERS";
/// A request's deadline, in seconds.
pub const MODEL_SERVER_TIMEOUT: &str = "SAGEMAKER_MODEL_SERVER_TIMEOUT";
/// Default of [`MODEL_SERVER_TIMEOUT`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// The payload limit in MB (see [`crate::payload`]).
pub const MAX_PAYLOAD_IN_MB: &str = "SAGEMAKER_MAX_PAYLOAD_IN_MB";
/// The batch strategy `/execution-parameters` reports.
pub const BATCH_STRATEGY: &str = "SAGEMAKER_BATCH_STRATEGY";
/// The concurrency `/execution-parameters` reports.
pub const MAX_CONCURRENT_TRANSFORMS: &str = "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS";
/// The Accept a request without one (or with `*/*`) gets.
pub const DEFAULT_INVOCATIONS_ACCEPT: &str = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT";
/// Default of [`DEFAULT_INVOCATIONS_ACCEPT`].
pub const DEFAULT_ACCEPT: &str = "application/json";
/// The log level, in Python's level numbers (see [`crate::logging`]).
pub const CONTAINER_LOG_LEVEL: &str = "SAGEMAKER_CONTAINER_LOG_LEVEL";

/// The most HTTP threads a server or a router runs: past that, the stages'
/// work, not HTTP, is what needs the CPUs.
pub const MAX_HTTP_THREADS: usize = 4;

/// The HTTP threads of a server or a router: one per CPU, at most
/// [`MAX_HTTP_THREADS`].
pub fn http_threads() -> usize {
    cpu_count().clamp(1, MAX_HTTP_THREADS)
}

/// The number of CPUs this process may use.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
