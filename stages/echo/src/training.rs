//! The echo stage's training hook (being written).

use modelstage_sdk::{StageError, Train, TrainingEnv};

use crate::Echo;

impl Train for Echo {
    fn train_fn(_env: &TrainingEnv) -> Result<(), StageError> {
        Err(StageError::internal("echo training is not implemented yet"))
    }
}
