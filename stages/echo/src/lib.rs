//! `echo`: the minimal modelstage stage, the tutorial of
//! `docs/writing-a-stage.md` and a test fixture.
//!
//! Serving returns the request body unchanged with the request's
//! Content-Type. Custom attributes sent by the client come back on the
//! response. Training writes the environment it received to the model dir
//! (see [`Train`] below), so tests can check the training contract.

use std::path::Path;

use modelstage_sdk::{export_stage, Context, Model, Response, Stage, StageError};

mod training;

/// The echo model: nothing to load.
pub struct Echo;

impl Model for Echo {
    fn model_fn(_model_dir: &Path) -> Result<Self, StageError> {
        Ok(Echo)
    }
}

impl Stage for Echo {
    type Input = Vec<u8>;
    type Output = Vec<u8>;

    fn input_fn(&self, body: &[u8], _ctx: &Context<'_>) -> Result<Vec<u8>, StageError> {
        Ok(body.to_vec())
    }

    fn predict_fn(&self, input: Vec<u8>, _ctx: &Context<'_>) -> Result<Vec<u8>, StageError> {
        Ok(input)
    }

    fn output_fn(&self, body: Vec<u8>, ctx: &Context<'_>) -> Result<Response, StageError> {
        let mut response = Response::new(body, ctx.content_type);
        response.custom_attributes = ctx.custom_attributes.map(str::to_string);
        Ok(response)
    }
}

export_stage!(Echo, train);
