//! The checks an image carries in its configuration (`docker image inspect`): the label that
//! says it honours `SAGEMAKER_BIND_TO_PORT`, and an exec-form ENTRYPOINT, so that `train` and
//! `serve` arrive as arguments and the SIGTERM of a stop reaches the server itself.

use super::ids;
use super::report::{Report, Verdict};
use crate::docker::{self, BIND_TO_PORT_LABEL};

/// The shells a shell-form ENTRYPOINT runs through.
const SHELLS: [&str; 4] = ["/bin/sh", "sh", "/bin/bash", "bash"];

pub fn check_image(image: &str, report: &mut Report) {
    let label = match docker::image_labels(image) {
        Ok(labels) => match labels.get(BIND_TO_PORT_LABEL).map(String::as_str) {
            Some("true") => Verdict::Pass(format!("{BIND_TO_PORT_LABEL}=true")),
            Some(other) => Verdict::Fail(format!(
                "{BIND_TO_PORT_LABEL} is {}, not true",
                super::http::excerpt(other.as_bytes())
            )),
            None => Verdict::Fail(format!(
                "no {BIND_TO_PORT_LABEL} label: SageMaker will not give it SAGEMAKER_BIND_TO_PORT \
                 (needed in a serial inference pipeline)"
            )),
        },
        Err(e) => Verdict::Fail(e.to_string()),
    };
    report.record(ids::IMAGE_LABEL, label);
    let entrypoint = match docker::image_entrypoint(image) {
        Ok(entrypoint) => entrypoint_outcome(entrypoint.as_deref()),
        Err(e) => Verdict::Fail(e.to_string()),
    };
    report.record(ids::IMAGE_ENTRYPOINT, entrypoint);
}

fn entrypoint_outcome(entrypoint: Option<&[String]>) -> Verdict {
    let shown = || serde_json::to_string(&entrypoint).unwrap_or_default();
    match entrypoint {
        None | Some([]) => {
            Verdict::Fail("no ENTRYPOINT: `docker run IMAGE serve` would run a program named serve".into())
        }
        Some([shell, flag, ..]) if SHELLS.contains(&shell.as_str()) && flag == "-c" => {
            Verdict::Fail(format!(
                "shell form {}: the shell drops the `serve`/`train` argument and receives the \
                 SIGTERM; write ENTRYPOINT [\"/path/to/program\"]",
                shown()
            ))
        }
        Some(_) => Verdict::Pass(shown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shell_form_and_missing_entrypoints_fail() {
        let exec = words(&["/usr/local/bin/modelstage"]);
        assert_eq!(
            entrypoint_outcome(Some(&exec)),
            Verdict::Pass(r#"["/usr/local/bin/modelstage"]"#.into())
        );
        let shell = words(&["/bin/sh", "-c", "modelstage serve"]);
        assert!(matches!(entrypoint_outcome(Some(&shell)), Verdict::Fail(t) if t.contains("shell form")));
        assert!(matches!(entrypoint_outcome(None), Verdict::Fail(t) if t.contains("no ENTRYPOINT")));
        // A script that execs its program is exec form too.
        let script = words(&["/entrypoint.sh"]);
        assert!(matches!(entrypoint_outcome(Some(&script)), Verdict::Pass(_)));
    }
}
