//! `modelstage-runtime`: what runs inside a SageMaker container.
//!
//! - [`loader`]: opens a stage library, checks its ABI descriptor before
//!   touching any hook, and calls the hooks safely.
//! - [`serve`]: the endpoint contract (`/ping`, `/invocations`,
//!   `/execution-parameters`) on actix-web, with the stage running in
//!   supervised worker processes so that a crash never takes the endpoint down.
//! - [`train`]: the training contract: the `/opt/ml` tree, the exact `SM_*`
//!   environment of sagemaker-training-toolkit, the failure file, exit codes.
//! - [`archive`]: unpacking a `model.tar.gz` safely and within bounds.
//! - [`logging`]: installs the contract's logger (`modelstage_contract::logging`:
//!   level from `SAGEMAKER_CONTAINER_LOG_LEVEL`, text or `MODELSTAGE_LOG_FORMAT=json`).

#![warn(missing_docs, unreachable_pub)]

pub mod archive;
pub mod inspect;
// The loader is where the host calls into stage code; its `unsafe` is
// allowed here and nowhere else in the runtime.
#[allow(unsafe_code)]
pub mod loader;
pub mod logging;
pub mod serve;
pub mod train;
