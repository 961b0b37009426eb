//! `modelstage-testing`: the test harness of a modelstage stage (a dev-dependency).
//!
//! It tests the stage as the runtime runs it, not as Rust code calls it: the library cargo built
//! is opened by the real loader (`modelstage_runtime::loader`), so the ABI descriptor, the C
//! symbols and the SDK's export glue are all exercised, for a Rust stage and a C stage alike.
//!
//! - [`TestStage`]: find and load the built library ([`TestStage::this_package`] finds the one of
//!   the package under test, building it if needed; [`library`] says how).
//! - [`TestModel::invoke`] with a [`Request`] (body, Content-Type, Accept, custom attributes):
//!   the stage's [`Answer`], or the [`Failure`] with the HTTP status the runtime would answer.
//! - [`TrainingJob`]: channels and hyperparameters laid out as a temporary `/opt/ml` tree; the
//!   training hook runs on it exactly as `modelstage train` runs it, and the [`Trained`] tree has
//!   the model, `output/success` or `output/failure`.
//! - [`TestStage::serve`]: a real `modelstage serve` on a free port with a [`Server`] client
//!   (it needs the `modelstage` binary: `MODELSTAGE_BIN`, else `modelstage` on `PATH`).
//!
//! ```ignore
//! use modelstage_testing::{Request, TestStage, TrainingJob};
//!
//! #[test]
//! fn trains_then_predicts() {
//!     let stage = TestStage::this_package();
//!     let trained = stage
//!         .train(&TrainingJob::new().file("train", "data.csv", "1\n2\n3\n"))
//!         .expect("training succeeds");
//!     let model = stage.load_model(trained.model_dir()).unwrap();
//!     let answer = model.invoke(&Request::new("4").content_type("text/csv")).unwrap();
//!     assert_eq!(answer.text(), "2");
//! }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod error;
pub mod library;
mod request;
mod server;
mod stage;
mod training;

pub use error::Error;
pub use library::{built_library, profile_dir};
pub use modelstage_runtime::loader::{HookError as Failure, StageInfo};
pub use request::{Answer, Request};
pub use server::{Server, ServerResponse};
pub use stage::{TestModel, TestStage};
pub use training::{Trained, TrainingJob};
