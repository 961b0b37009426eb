//! `modelstage-local`: local mode, the SageMaker platform emulated on one
//! machine. `fit` is a local CreateTrainingJob, `transform` a local
//! CreateTransformJob, `deploy` a local CreateModel + CreateEndpoint (one
//! stage, a serial pipeline behind a router, or fused in one process),
//! `invoke` a client for any endpoint that speaks the contract, and `check` a
//! conformance checker for that contract. Stages run as
//! `modelstage` processes or as Docker containers, exactly as SageMaker runs
//! containers; `image` builds the runtime base and one image per stage, `new`
//! creates a stage project, `tarball` packs `model.tar.gz` (the runtime's
//! `archive` unpacks it), and `request_doc` reads the API's request documents,
//! checked against their member lists in `request_shapes`.
//! `api` serves all of it behind SageMaker's own wire protocols, for boto3
//! and the AWS tools.

pub mod api;
pub mod check;
mod container_client;
pub mod deploy;
pub mod docker;
mod error;
pub mod fit;
pub mod image;
pub mod invoke;
pub mod new;
pub mod request_doc;
pub mod request_shapes;
pub mod tarball;
pub mod transform;

pub use error::CommandError;
