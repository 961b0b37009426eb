//! `modelstage image`: one Docker image per stage, built on this machine with no registry.
//!
//! Two kinds of image, both built through the `docker` command (`crate::docker`):
//!
//! - the **runtime base** ([`runtime`], `modelstage image --runtime`): this very `modelstage`
//!   binary and the C runtime it needs (the libraries `ldd` lists, `/etc/nsswitch.conf`, `/tmp`),
//!   imported from a tar as `modelstage/runtime:<version>`, with the exec-form entrypoint, no stage;
//! - a **stage image** ([`stage`], `modelstage image --stage LIB --tag NAME`): that base plus the
//!   stage library at `/opt/modelstage/stage.so` and labels read from the library by the loader.
//!
//! Every mistake stops the build with what to do, before anything is tagged: no stage given, a
//! library that is not a stage, a base image that is not on this machine (it is never pulled).

mod dockerfile;
mod runtime;
mod stage;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use dockerfile::{stage_dockerfile, StageLabels, STAGE_PATH};
pub use runtime::{build_runtime, runtime_libraries};
pub use stage::{build_stage_image, check_base};

/// The version of this `modelstage`, which names its runtime base image.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The runtime base image of this `modelstage`: `modelstage/runtime:<version>`.
pub fn runtime_tag() -> String {
    format!("modelstage/runtime:{VERSION}")
}

/// `modelstage image`.
#[derive(clap::Args, Debug, Default)]
pub struct ImageArgs {
    /// The stage library to package (e.g. target/release/libmy_stage.so).
    #[arg(long, value_name = "LIB")]
    pub stage: Option<PathBuf>,
    /// The name to tag the image with (e.g. my-stage:latest).
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
    /// The runtime base image the stage goes on; default modelstage/runtime:<this version>.
    /// It must be on this machine: it is never pulled.
    #[arg(long, value_name = "IMAGE")]
    pub base: Option<String>,
    /// Build the runtime base image from this `modelstage` binary instead of a stage image
    /// (tagged modelstage/runtime:<version>, or --tag).
    #[arg(long, conflicts_with_all = ["stage", "base"])]
    pub runtime: bool,
}

/// Runs `modelstage image`; the error says why no image was tagged.
pub fn run(args: ImageArgs) -> Result<(), crate::CommandError> {
    let message = build(args).map_err(|e| crate::CommandError::failed("image", e))?;
    println!("{message}");
    Ok(())
}

fn build(args: ImageArgs) -> anyhow::Result<String> {
    if args.runtime {
        let tag = args.tag.unwrap_or_else(runtime_tag);
        let binary = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find this modelstage binary: {e}"))?;
        return build_runtime(&binary, &tag);
    }
    let Some(stage) = args.stage else {
        anyhow::bail!(
            "no stage given: pass the stage library with --stage, e.g. \
             `modelstage image --stage target/release/libmy_stage.so --tag my-stage:latest` \
             (build it first with `cargo build --release`)"
        );
    };
    let Some(tag) = args.tag else {
        anyhow::bail!(
            "no image name given: pass --tag, e.g. `--tag my-stage:latest` \
             (push that name to a registry such as Amazon ECR to use it on SageMaker)"
        );
    };
    let base = args.base.unwrap_or_else(runtime_tag);
    build_stage_image(&stage, &tag, &base)
}
