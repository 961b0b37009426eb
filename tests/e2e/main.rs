//! The end-to-end tests: one test binary that runs the real `modelstage`
//! binary against the real stage libraries built by the workspace build.
//! `ci/test.sh` builds the workspace first.

mod support;

mod abalone;
mod api;
mod archives;
mod authoring;
mod authoring_errors;
mod check;
mod docker;
mod edge;
mod featurizer;
mod hostile_input;
mod inspect;
mod isolation;
mod json_logs;
mod linear_learner;
mod metrics;
mod multi_model;
mod oip;
mod pipeline;
mod request_docs;
mod serve;
mod train;
mod transform;
mod unix_socket;
