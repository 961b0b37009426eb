//! The environment each container of a local endpoint gets, and the settings the router and a
//! fused server derive from it.
//!
//! A container's variables are, later ones winning: ours (minus the platform's per-container
//! ones), its `Environment`, the caller's extra variables (batch transform's), then the platform's:
//! `SAGEMAKER_BASE_DIR` and, in a pipeline, `SAGEMAKER_BIND_TO_PORT` and `SAGEMAKER_SAFE_PORT_RANGE`
//! (docs/contract.md (Serial pipelines)).
//!
//! A fused pipeline is one process, so it has one environment: the union of its containers'
//! (the first container's value wins a conflict, with a warning), except that each stage keeps its
//! own default Accept through `--stage-accept`, as it would as a separate container.

use std::collections::BTreeMap;

use super::request::ContainerSpec;

pub use modelstage_contract::settings::DEFAULT_INVOCATIONS_ACCEPT as DEFAULT_ACCEPT;
use modelstage_contract::settings::{
    DEFAULT_TIMEOUT_SECS, MAX_PAYLOAD_IN_MB as MAX_PAYLOAD, MODEL_SERVER_TIMEOUT as TIMEOUT,
};

/// A variable as the container will see it (its `Environment`, the extra variables, then ours).
pub fn effective(container: &ContainerSpec, extra: &[(String, String)], name: &str) -> Option<String> {
    extra
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .or_else(|| container.environment.get(name).cloned())
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.trim().is_empty())
}

/// The Accept a container answers with when a request has none (`serve`'s rule).
pub fn default_accept(container: &ContainerSpec, extra: &[(String, String)]) -> String {
    effective(container, extra, DEFAULT_ACCEPT).unwrap_or_else(|| "application/json".to_string())
}

/// A container's own variables: its `Environment`, then the extra ones.
pub fn container_env(container: &ContainerSpec, extra: &[(String, String)]) -> Vec<(String, String)> {
    container
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(extra.iter().cloned())
        .collect()
}

/// The one environment of a fused pipeline.
pub fn fused_env(containers: &[ContainerSpec], extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut merged: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for c in containers {
        for (k, v) in &c.environment {
            if k == DEFAULT_ACCEPT {
                continue;
            }
            match merged.get(k.as_str()) {
                Some((first, value)) if value != v => log::warn!(
                    "fused pipeline: {k} is '{value}' in {first} but '{v}' in {}; the process uses '{value}'",
                    c.name
                ),
                Some(_) => {}
                None => {
                    merged.insert(k, (&c.name, v));
                }
            }
        }
    }
    let mut env: Vec<(String, String)> = merged
        .into_iter()
        .map(|(k, (_, v))| (k.to_string(), v.to_string()))
        .collect();
    env.extend(extra.iter().filter(|(k, _)| k != DEFAULT_ACCEPT).cloned());
    // The server's own default Accept is the one its last stage answers a request without Accept
    // with: the last container's, as in a pipeline of separate containers.
    if let Some(last) = containers.last() {
        env.push((DEFAULT_ACCEPT.to_string(), default_accept(last, extra)));
    }
    env
}

/// How long a container may take: its `SAGEMAKER_MODEL_SERVER_TIMEOUT` (default 60 s).
pub fn timeout_secs(container: &ContainerSpec, extra: &[(String, String)]) -> u64 {
    effective(container, extra, TIMEOUT)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
}

/// The request size limit a container starts with (`SAGEMAKER_MAX_PAYLOAD_IN_MB`, default 6).
pub fn max_payload_in_mb(container: &ContainerSpec, extra: &[(String, String)]) -> u64 {
    effective(container, extra, MAX_PAYLOAD)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(modelstage_contract::payload::DEFAULT_MAX_PAYLOAD_IN_MB.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, env: &[(&str, &str)]) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            image: "x.so".into(),
            model_data: None,
            environment: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn extra(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn extra_variables_win_over_the_container_environment() {
        let c = container("c1", &[(TIMEOUT, "30"), ("A", "1")]);
        assert_eq!(timeout_secs(&c, &[]), 30);
        assert_eq!(timeout_secs(&c, &extra(&[(TIMEOUT, "90")])), 90);
        assert_eq!(
            container_env(&c, &extra(&[("A", "2")])),
            extra(&[("A", "1"), (TIMEOUT, "30"), ("A", "2")])
        );
        assert_eq!(max_payload_in_mb(&container("c", &[(MAX_PAYLOAD, "2")]), &[]), 2);
        assert_eq!(
            default_accept(&container("c", &[(DEFAULT_ACCEPT, "text/csv")]), &[]),
            "text/csv"
        );
    }

    #[test]
    fn a_fused_environment_is_the_union_with_the_last_default_accept() {
        let a = container(
            "c1",
            &[("SHARED", "a"), ("ONLY_A", "1"), (DEFAULT_ACCEPT, "text/csv")],
        );
        let b = container(
            "c2",
            &[("SHARED", "b"), (DEFAULT_ACCEPT, "application/jsonlines")],
        );
        let env = fused_env(&[a, b], &extra(&[("SAGEMAKER_BATCH", "true")]));
        assert_eq!(
            env,
            extra(&[
                ("ONLY_A", "1"),
                ("SHARED", "a"),
                ("SAGEMAKER_BATCH", "true"),
                (DEFAULT_ACCEPT, "application/jsonlines"),
            ])
        );
    }
}
