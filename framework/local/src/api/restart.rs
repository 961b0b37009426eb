//! What a start of `modelstage api` does with the resources the last run left: jobs that were
//! running are marked `Failed` ("interrupted by a restart of modelstage api"), never silently
//! dropped; endpoints that were up are started again (or marked `Failed` with the reason).

use std::sync::Arc;

use super::state::Api;
use super::store::Kind;
use super::wire::{ApiError, DEFAULT_REGION};
use super::{endpoints, training, transform};

/// The FailureReason of a job that was running when `modelstage api` stopped.
pub const INTERRUPTED: &str = "interrupted by a restart of modelstage api";

pub fn recover(api: &Arc<Api>) -> Result<(), ApiError> {
    for kind in [Kind::TrainingJob, Kind::TransformJob] {
        let status_member = format!("{}Status", kind.member());
        let name_member = format!("{}Name", kind.member());
        for description in api.store.list(kind)? {
            if !matches!(
                description[&status_member].as_str(),
                Some("InProgress" | "Stopping")
            ) {
                continue;
            }
            let name = description[&name_member].as_str().unwrap_or_default();
            log::warn!(
                "the {} {} was running when modelstage api stopped: marked Failed",
                kind.label(),
                super::wire::quote(name)
            );
            match kind {
                Kind::TrainingJob => training::fail(api, name, INTERRUPTED),
                _ => transform::finish(api, name, "Failed", Some(INTERRUPTED)),
            }
        }
    }
    endpoints::resume(api, DEFAULT_REGION)
}
