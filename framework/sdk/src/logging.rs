//! One log format for the runtime and every stage, with the request id.
//!
//! A stage is its own shared library with its own copy of the `log` crate,
//! so the SDK installs a logger in the stage the first time the runtime calls
//! a hook; the runtime installs the same one in its own processes. The level
//! comes from `SAGEMAKER_CONTAINER_LOG_LEVEL` (Python's numbers, as the
//! toolkits read it: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL),
//! unless `RUST_LOG` is set. Lines look like
//! `2026-11-27T03:50:00.123Z INFO  featurizer rid=4f1c… message`.

use std::cell::RefCell;
use std::io::Write;

use log::LevelFilter;

thread_local! {
    static REQUEST_ID: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Maps a Python logging level number onto a `log` filter.
pub fn level_from_python(level: &str) -> Option<LevelFilter> {
    let n: i64 = level.trim().parse().ok()?;
    Some(match n {
        i64::MIN..=0 => LevelFilter::Trace,
        1..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        _ => LevelFilter::Error,
    })
}

/// Installs the logger (once per library; later calls do nothing).
/// `component` names the process in each line (the stage, or `modelstage`).
pub fn init(component: &str) {
    let component = component.to_string();
    let mut builder = env_logger::Builder::new();
    let level = std::env::var("SAGEMAKER_CONTAINER_LOG_LEVEL")
        .ok()
        .and_then(|l| level_from_python(&l))
        .unwrap_or(LevelFilter::Info);
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(move |buf, record| {
        let ts = buf.timestamp_millis();
        REQUEST_ID.with(|rid| {
            let rid = rid.borrow();
            if rid.is_empty() {
                writeln!(buf, "{ts} {:<5} {component} {}", record.level(), record.args())
            } else {
                writeln!(
                    buf,
                    "{ts} {:<5} {component} rid={rid} {}",
                    record.level(),
                    record.args()
                )
            }
        })
    });
    let _ = builder.try_init();
}

/// Sets the request id that this thread's log lines carry (`None` clears it).
pub fn set_request_id(request_id: Option<&str>) {
    REQUEST_ID.with(|rid| {
        let mut rid = rid.borrow_mut();
        rid.clear();
        if let Some(id) = request_id {
            rid.push_str(id);
        }
    });
}
