//! The stages a worker runs, chained as SageMaker chains the containers of a
//! serial pipeline (docs/contract.md (Serial pipelines)): the client's Content-Type goes to the
//! first stage, each stage's response body and Content-Type become the next
//! stage's request, the stages between get their default Accept, and the
//! client's Accept goes to the last. A single stage is a pipeline of one.

use std::path::PathBuf;

use super::config::StagePlan;
use super::protocol::{WireAnswer, WireRequest};
use crate::loader::{HookError, LoadError, LoadedModel, LoadedStage, RequestMeta};

/// SageMaker's limit on what one container of a serial pipeline may pass to
/// the next: 5 MB per hop (docs/contract.md (Serial pipelines)).
pub const HOP_LIMIT_MB: usize = 5;
/// [`HOP_LIMIT_MB`] in bytes.
pub const HOP_LIMIT_BYTES: usize = HOP_LIMIT_MB * 1024 * 1024;

/// SageMaker's message for a hop over the limit; `size` is e.g. "6000000 bytes".
pub fn hop_too_large_message(from: &str, to: &str, size: &str) -> String {
    format!(
        "Received response from {from} with status code 200. However, the request payload from {from} to \
         {to} is {size}, which has exceeded the maximum limit of {HOP_LIMIT_MB} MB."
    )
}

/// Why a worker's stages could not start: what the server is told
/// (`LOAD_FAILED`) and reports.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChainError {
    /// A library could not be opened as a stage.
    #[error(transparent)]
    Open(#[from] LoadError),
    /// A stage's `model_fn` failed on its model dir.
    #[error("{error} (model dir {}; fix the model or the stage and restart)", .model_dir.display())]
    Model {
        /// The hook's error, naming the stage.
        error: HookError,
        /// The model dir it was given.
        model_dir: PathBuf,
    },
}

struct Member {
    name: String,
    default_accept: String,
    model: LoadedModel,
}

/// The loaded stages of one worker.
pub(super) struct Pipeline {
    members: Vec<Member>,
    /// `container-1 -> container-2`: how errors of the pipeline as a whole name it.
    label: String,
}

impl Pipeline {
    /// Opens every library (which runs its initialisers: only a worker
    /// process does this). The error says which library failed and why.
    pub(super) fn open(plans: &[StagePlan]) -> Result<Vec<&'static LoadedStage>, ChainError> {
        plans
            .iter()
            .map(|plan| Ok(LoadedStage::open(&plan.library)?))
            .collect()
    }

    /// Calls every `model_fn` of the libraries `open` returned for `plans`.
    /// The error says which stage failed and why.
    pub(super) fn load(plans: &[StagePlan], stages: &[&'static LoadedStage]) -> Result<Pipeline, ChainError> {
        let mut members = Vec::with_capacity(plans.len());
        for (plan, stage) in plans.iter().zip(stages) {
            let model = stage
                .load_model(&plan.model_dir)
                .map_err(|error| ChainError::Model {
                    error,
                    model_dir: plan.model_dir.clone(),
                })?;
            members.push(Member {
                name: plan.name.clone(),
                default_accept: plan.default_accept.clone(),
                model,
            });
        }
        let label = members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(" -> ");
        Ok(Pipeline { members, label })
    }

    /// A pipeline of one stage around a model already loaded: one model of a
    /// multi-model endpoint (`mme`).
    pub(super) fn of_model(name: &str, default_accept: &str, model: LoadedModel) -> Pipeline {
        Pipeline {
            members: vec![Member {
                name: name.to_string(),
                default_accept: default_accept.to_string(),
                model,
            }],
            label: name.to_string(),
        }
    }

    /// Runs one request through every stage.
    pub(super) fn handle(&self, request: &WireRequest) -> WireAnswer {
        // A single stage gets the request's metadata as the edge resolved it.
        if let [member] = self.members.as_slice() {
            return match member.model.invoke(&request.body, &request.meta) {
                Ok(reply) => WireAnswer::Reply {
                    id: request.id,
                    hook_nanos: 0,
                    content_type: reply.content_type,
                    custom_attributes: reply.custom_attributes,
                    body: reply.body,
                },
                Err(e) => self.stage_error(request.id, member, e),
            };
        }
        let last = self.members.len() - 1;
        let mut body = request.body.clone();
        let mut content_type = request.meta.content_type.clone();
        let mut custom_attributes = request.meta.custom_attributes.clone();
        for (i, member) in self.members.iter().enumerate() {
            let meta = RequestMeta {
                request_id: request.meta.request_id.clone(),
                content_type: std::mem::take(&mut content_type),
                accept: if i == last {
                    request.meta.accept.clone()
                } else {
                    member.default_accept.clone()
                },
                custom_attributes: custom_attributes.take(),
                target_model: request.meta.target_model.clone(),
            };
            match member.model.invoke(&body, &meta) {
                Ok(reply) if i < last && reply.body.len() > HOP_LIMIT_BYTES => {
                    let size = format!("{} bytes", reply.body.len());
                    let next = &self.members[i + 1].name;
                    return WireAnswer::Error {
                        id: request.id,
                        hook_nanos: 0,
                        http_status: 413,
                        container: None,
                        stage: self.label.clone(),
                        hook: String::new(),
                        message: hop_too_large_message(&member.name, next, &size),
                        record: None,
                    };
                }
                Ok(reply) => {
                    body = reply.body;
                    content_type = reply.content_type;
                    custom_attributes = reply.custom_attributes;
                }
                Err(e) => return self.stage_error(request.id, member, e),
            }
        }
        WireAnswer::Reply {
            id: request.id,
            hook_nanos: 0,
            content_type,
            custom_attributes,
            body,
        }
    }

    /// The answer for a hook's error: in a fused pipeline it names the
    /// container that failed.
    fn stage_error(&self, id: u64, member: &Member, e: HookError) -> WireAnswer {
        WireAnswer::Error {
            id,
            hook_nanos: 0,
            http_status: e.http_status(),
            container: (self.members.len() > 1).then(|| member.name.clone()),
            stage: e.stage,
            hook: e.hook.to_string(),
            message: e.message,
            record: e.record,
        }
    }
}
