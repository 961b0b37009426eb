//! `modelstage-local`: local mode, the SageMaker platform emulated on one
//! machine. `fit` is a local CreateTrainingJob, `transform` a local
//! CreateTransformJob, `deploy` a local CreateModel + CreateEndpoint (one
//! stage, a serial pipeline behind a router, or fused in one process), and
//! `invoke` a client for any endpoint that speaks the contract. Stages run as
//! `modelstage` processes or as Docker containers, exactly as SageMaker runs
//! containers; `tarball` packs and safely unpacks `model.tar.gz`. `api` serves all of
//! it behind SageMaker's own wire protocols, for boto3 and the AWS tools.

pub mod api;
pub mod deploy;
pub mod docker;
pub mod fit;
pub mod invoke;
pub mod request_doc;
pub mod tarball;
pub mod transform;
