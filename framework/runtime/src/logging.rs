//! Installs the shared log format (see `modelstage_sdk::logging`) in a
//! runtime process.

/// Installs the logger for a `modelstage` process named `component`.
pub fn init(component: &str) {
    modelstage_sdk::logging::init(component);
}
