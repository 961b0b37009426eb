//! A stage image: the runtime base plus one stage library and its labels, built from a small
//! generated build context with `docker build --pull=false` (classic builder), so nothing is
//! looked up in a registry.
//!
//! The order is what makes every mistake cheap: the library is read by the loader on the host
//! first (a library that is not a stage never reaches Docker), the base must already be on this
//! machine, and the built image must load its stage inside itself before the tag is set.

use std::path::Path;

use anyhow::{bail, Context};
use modelstage_runtime::loader::LoadedStage;

use super::dockerfile::{stage_dockerfile, StageLabels, STAGE_PATH};
use super::runtime::BINARY_PATH;
use crate::docker::{self, cli};

/// The stage library's name in the build context.
const CONTEXT_STAGE: &str = "stage.so";

/// Builds the image of the stage library `library` on `base` and tags it `tag`.
pub fn build_stage_image(library: &Path, tag: &str, base: &str) -> anyhow::Result<String> {
    if !library.exists() {
        bail!(
            "the stage library {} does not exist: build it first (`cargo build --release` puts \
             target/release/lib<crate>.so)",
            library.display()
        );
    }
    if !library.is_file() {
        bail!(
            "{} is not a file: --stage takes the stage library itself (lib<crate>.so)",
            library.display()
        );
    }
    let stage = LoadedStage::open(library).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a modelstage stage, so no image was built: {e}",
            library.display()
        )
    })?;
    let labels = StageLabels::from_info(stage.info());
    if tag.trim().is_empty() || tag.starts_with('-') {
        bail!("--tag {tag:?} is not an image name: use e.g. my-stage:latest");
    }
    docker::engine_available()?;
    check_base(base)?;

    let context = tempfile::Builder::new()
        .prefix("modelstage-image-")
        .tempdir()
        .context("cannot create a temporary build context")?;
    std::fs::copy(library, context.path().join(CONTEXT_STAGE))
        .with_context(|| format!("cannot copy {} into the build context", library.display()))?;
    std::fs::write(
        context.path().join("Dockerfile"),
        stage_dockerfile(base, CONTEXT_STAGE, &labels),
    )
    .context("cannot write the Dockerfile of the build context")?;

    let id = build_untagged(context.path())?;
    if let Err(e) = load_inside(&id) {
        let _ = cli::run(&["image", "rm", "--force", &id]);
        bail!(
            "the image of {} is built but its stage does not load inside it, so {tag} was not \
             tagged: {e}\n  a missing library means the base {base} lacks something the stage \
             needs: link it statically into the stage, or build the base with it",
            library.display()
        );
    }
    cli::run(&["tag", &id, tag]).map_err(|e| e.context(&format!("cannot tag {tag}")))?;
    Ok(format!(
        "built {tag}: stage {} {} (ABI {}) on {base}",
        labels.name, labels.version, labels.abi
    ))
}

/// The base must be on this machine; the error says how to build it (it is never pulled).
pub fn check_base(base: &str) -> anyhow::Result<()> {
    if docker::image_exists(base) {
        return Ok(());
    }
    let runtime = super::runtime_tag();
    let how = if base == runtime {
        "build it from this modelstage with `modelstage image --runtime` \
         (in a modelstage checkout, `ci/docker-build.sh` builds it too)"
            .to_string()
    } else {
        format!(
            "build or load it first, or leave out --base to use {runtime} \
             (`modelstage image --runtime` builds that one)"
        )
    };
    bail!("the base image {base} is not on this machine, and it is never pulled: {how}")
}

/// `docker build` of the context without a tag; returns the image id.
fn build_untagged(context: &Path) -> anyhow::Result<String> {
    let context_arg = context.display().to_string();
    let args = ["build", "--pull=false", "--quiet", &context_arg];
    // The classic builder: BuildKit may look a local-only base image up in a registry.
    let output = cli::command(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .map_err(cli::spawn_error)?;
    let stdout = cli::check(&args, output).map_err(|e| {
        // The classic builder's deprecation notice is noise; the rest is the reason.
        let text = e.to_string();
        let reason: Vec<&str> = text
            .lines()
            .filter(|l| {
                !(l.contains("DEPRECATED")
                    || l.contains("legacy builder")
                    || l.contains("BuildKit")
                    || l.contains("environment-variable"))
            })
            .collect();
        anyhow::anyhow!("docker build failed: {}", reason.join("\n"))
    })?;
    let id = stdout.trim().lines().last().unwrap_or("").trim().to_string();
    if id.is_empty() {
        bail!("docker build printed no image id");
    }
    Ok(id)
}

/// Runs `modelstage inspect` on the baked-in stage inside the image, which proves the binary,
/// the libraries and the stage fit together.
fn load_inside(id: &str) -> anyhow::Result<()> {
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        BINARY_PATH,
        id,
        "inspect",
        STAGE_PATH,
    ];
    let output = cli::command(args).output().map_err(cli::spawn_error)?;
    if output.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    bail!("{}", text.trim())
}
