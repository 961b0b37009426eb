//! Installs the shared log format (see `modelstage_contract::logging`) in a
//! runtime process.

/// Installs the logger for a `modelstage` process named `component`.
pub fn init(component: &str) {
    modelstage_contract::logging::init(component);
}
