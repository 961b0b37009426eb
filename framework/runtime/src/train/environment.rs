//! The training environment exactly as sagemaker-training-toolkit builds it: every property of its
//! `Environment` object (the `SM_TRAINING_ENV` document) and every `SM_*` variable of its
//! `to_env_vars`, rendered with its rules (docs/contract.md (Training)).

use modelstage_contract::python::{str_of, to_json_compact_sorted};
use serde_json::{json, Map, Value};

use super::cmd_args::to_cmd_args;
use super::config::{decode_hyperparameters, split, JobConfig};
use super::host::HostFacts;
use super::paths::Paths;
use super::JobError;

/// The `sagemaker_*` switches that make the toolkit put the current instance group into
/// `distribution_instance_groups` on a homogeneous cluster.
const DISTRIBUTION_SWITCHES: [&str; 6] = [
    "sagemaker_mpi_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
];

/// The training environment of one host.
#[derive(Debug, Clone)]
pub struct TrainingEnvironment {
    /// Every public property of the toolkit's `Environment`, by name: `SM_TRAINING_ENV`.
    pub properties: Map<String, Value>,
    /// The command-line form of the user hyperparameters: `SM_USER_ARGS`.
    pub user_args: Vec<String>,
    /// `SAGEMAKER_JOB_NAME`, `CURRENT_HOST`, `SAGEMAKER_REGION`: what the toolkit sets besides `SM_*`.
    pub toolkit_vars: Vec<(String, String)>,
}

impl TrainingEnvironment {
    /// Builds the environment from the job configuration. `var` reads the process environment
    /// (`TRAINING_JOB_NAME`, `SAGEMAKER_PROGRAM`, `SAGEMAKER_TRAINING_MODULE`, the AWS region).
    pub fn build(
        paths: &Paths,
        config: &JobConfig,
        facts: &HostFacts,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TrainingEnvironment, JobError> {
        let rc = &config.resource_config;
        let hosts = rc
            .get("hosts")
            .ok_or_else(|| resource_config(" has no 'hosts'"))?
            .as_array()
            .filter(|h| !h.is_empty() && h.iter().all(Value::is_string))
            .ok_or_else(|| resource_config(": 'hosts' must be a non-empty list of host names"))?
            .clone();
        let current_host = rc
            .get("current_host")
            .ok_or_else(|| resource_config(" has no 'current_host'"))?
            .as_str()
            .ok_or_else(|| resource_config(": 'current_host' must be a host name"))?
            .to_string();
        let current_instance_type = rc.get("current_instance_type").cloned().unwrap_or(json!("local"));
        let current_instance_group = rc
            .get("current_group_name")
            .cloned()
            .unwrap_or(json!("homogeneousCluster"));
        let network_interface_name = rc.get("network_interface_name").cloned().unwrap_or(json!("eth0"));

        let hps = split(decode_hyperparameters(&config.hyperparameters));
        let special = |key: &str| hps.sagemaker.get(key);

        let program_env = var("SAGEMAKER_PROGRAM");
        // module_name keeps an empty SAGEMAKER_PROGRAM; user_entry_point treats it as unset.
        let module_name = match &program_env {
            Some(p) => p.clone(),
            None => special("sagemaker_program").map_or("None".to_string(), str_of),
        };
        let module_name = module_name
            .strip_suffix(".py")
            .unwrap_or(&module_name)
            .to_string();
        let user_entry_point = match program_env.filter(|p| !p.is_empty()) {
            Some(p) => Value::String(p),
            None => special("sagemaker_program").cloned().unwrap_or(Value::Null),
        };
        let module_dir = special("sagemaker_submit_directory").map_or(paths.code_dir.clone(), str_of);
        let log_level = special("sagemaker_container_log_level")
            .cloned()
            .unwrap_or(json!(20));

        let groups = instance_groups(rc)?;
        let distribution_instance_groups = match hps.framework.get("sagemaker_distribution_instance_groups") {
            Some(v) => v.clone(),
            None if DISTRIBUTION_SWITCHES
                .iter()
                .any(|k| hps.framework.get(*k).is_some_and(truthy)) =>
            {
                json!([current_instance_group.clone()])
            }
            None => json!([]),
        };
        let distribution_hosts: Vec<Value> = if groups.is_empty() {
            hosts.clone()
        } else {
            groups
                .iter()
                .filter(|g| contains(&distribution_instance_groups, &g.name))
                .flat_map(|g| g.hosts.iter().cloned())
                .collect()
        };
        let master_hostname = distribution_hosts.first().unwrap_or(&hosts[0]).clone();
        let current_instance_group_hosts = groups
            .iter()
            .find(|g| current_instance_group.as_str() == Some(g.name.as_str()))
            .map_or(json!([]), |g| Value::Array(g.hosts.clone()));
        let instance_groups_dict: Map<String, Value> =
            groups.iter().map(|g| (g.name.clone(), g.raw.clone())).collect();

        let is_modelparallel_enabled = match var("SM_HP_MP_PARAMETERS") {
            None => Value::Null,
            Some(p) if p.is_empty() => json!(""),
            Some(p) => json!(p != "{}"),
        };
        let channel_input_dirs: Map<String, Value> = config
            .input_data_config
            .keys()
            .map(|name| (name.clone(), json!(paths.channel_dir(name))))
            .collect();

        let properties = Map::from_iter([
            (
                "additional_framework_parameters".into(),
                Value::Object(hps.framework.clone()),
            ),
            ("channel_input_dirs".into(), Value::Object(channel_input_dirs)),
            ("current_host".into(), json!(current_host)),
            ("current_instance_group".into(), current_instance_group),
            (
                "current_instance_group_hosts".into(),
                current_instance_group_hosts,
            ),
            ("current_instance_type".into(), current_instance_type),
            ("distribution_hosts".into(), Value::Array(distribution_hosts)),
            (
                "distribution_instance_groups".into(),
                distribution_instance_groups,
            ),
            (
                "framework_module".into(),
                var("SAGEMAKER_TRAINING_MODULE").map_or(Value::Null, Value::String),
            ),
            ("hosts".into(), Value::Array(hosts)),
            ("hyperparameters".into(), Value::Object(hps.user.clone())),
            ("input_config_dir".into(), json!(paths.input_config_dir)),
            (
                "input_data_config".into(),
                Value::Object(config.input_data_config.clone()),
            ),
            ("input_dir".into(), json!(paths.input_dir)),
            (
                "instance_groups".into(),
                json!(groups.iter().map(|g| &g.name).collect::<Vec<_>>()),
            ),
            ("instance_groups_dict".into(), Value::Object(instance_groups_dict)),
            ("is_hetero".into(), json!(groups.len() > 1)),
            (
                "is_master".into(),
                json!(master_hostname.as_str() == Some(current_host.as_str())),
            ),
            ("is_modelparallel_enabled".into(), is_modelparallel_enabled),
            (
                "is_smddpmprun_installed".into(),
                json!(facts.smddpmprun_installed),
            ),
            ("is_smddprun_installed".into(), json!(facts.smddprun_installed)),
            (
                "job_name".into(),
                var("TRAINING_JOB_NAME").map_or(Value::Null, Value::String),
            ),
            ("log_level".into(), log_level),
            ("master_hostname".into(), master_hostname),
            ("model_dir".into(), json!(paths.model_dir)),
            ("module_dir".into(), json!(module_dir)),
            ("module_name".into(), json!(module_name)),
            ("network_interface_name".into(), network_interface_name),
            ("num_cpus".into(), json!(facts.num_cpus)),
            ("num_gpus".into(), json!(facts.num_gpus)),
            ("num_neurons".into(), json!(facts.num_neurons)),
            ("output_data_dir".into(), json!(paths.output_data_dir)),
            ("output_dir".into(), json!(paths.output_dir)),
            (
                "output_intermediate_dir".into(),
                json!(paths.output_intermediate_dir),
            ),
            ("resource_config".into(), Value::Object(rc.clone())),
            (
                "topology".into(),
                rc.get("topology").cloned().unwrap_or(Value::Null),
            ),
            ("user_entry_point".into(), user_entry_point),
        ]);

        // boto3 finds the default region in AWS_DEFAULT_REGION (AWS_REGION in newer botocore).
        let region = special("sagemaker_region")
            .map(str_of)
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| var("AWS_REGION"))
            .unwrap_or_default();
        let toolkit_vars = vec![
            (
                "SAGEMAKER_JOB_NAME".to_string(),
                special("sagemaker_job_name").map(str_of).unwrap_or_default(),
            ),
            ("CURRENT_HOST".to_string(), current_host),
            ("SAGEMAKER_REGION".to_string(), region),
        ];
        Ok(TrainingEnvironment {
            user_args: to_cmd_args(&hps.user),
            properties,
            toolkit_vars,
        })
    }

    /// The `SM_TRAINING_ENV` document.
    pub fn training_env_json(&self) -> String {
        to_json_compact_sorted(&Value::Object(self.properties.clone()))
    }

    /// Every `SM_*` variable of the toolkit's `to_env_vars`, sorted by name.
    pub fn sm_vars(&self) -> Vec<(String, String)> {
        let p = |key: &str| self.properties.get(key).cloned().unwrap_or(Value::Null);
        let mut entries: Vec<(String, Value)> = [
            ("hosts", p("hosts")),
            ("network_interface_name", p("network_interface_name")),
            ("hps", p("hyperparameters")),
            ("user_entry_point", p("user_entry_point")),
            ("framework_params", p("additional_framework_parameters")),
            ("resource_config", p("resource_config")),
            ("input_data_config", p("input_data_config")),
            ("output_data_dir", p("output_data_dir")),
            ("channels", json!(self.channel_names())),
            ("current_host", p("current_host")),
            ("current_instance_type", p("current_instance_type")),
            ("current_instance_group", p("current_instance_group")),
            ("current_instance_group_hosts", p("current_instance_group_hosts")),
            ("instance_groups", p("instance_groups")),
            ("instance_groups_dict", p("instance_groups_dict")),
            ("distribution_instance_groups", p("distribution_instance_groups")),
            ("is_hetero", p("is_hetero")),
            ("module_name", p("module_name")),
            ("log_level", p("log_level")),
            ("framework_module", p("framework_module")),
            ("input_dir", p("input_dir")),
            ("input_config_dir", p("input_config_dir")),
            ("output_dir", p("output_dir")),
            ("num_cpus", p("num_cpus")),
            ("num_gpus", p("num_gpus")),
            ("num_neurons", p("num_neurons")),
            ("model_dir", p("model_dir")),
            ("module_dir", p("module_dir")),
            ("training_env", Value::Object(self.properties.clone())),
            ("user_args", json!(self.user_args)),
            ("output_intermediate_dir", p("output_intermediate_dir")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(topology) = self.properties.get("topology").filter(|t| !t.is_null()) {
            entries.push(("topology".into(), topology.clone()));
        }
        if let Some(Value::Object(dirs)) = self.properties.get("channel_input_dirs") {
            entries.extend(
                dirs.iter()
                    .map(|(name, dir)| (format!("channel_{name}"), dir.clone())),
            );
        }
        if let Some(Value::Object(hps)) = self.properties.get("hyperparameters") {
            entries.extend(
                hps.iter()
                    .map(|(key, value)| (format!("hp_{key}"), value.clone())),
            );
        }
        let mut vars: Vec<(String, String)> = entries
            .into_iter()
            .map(|(key, value)| (format!("SM_{}", key.to_uppercase()), render(&value)))
            .collect();
        // Two keys that differ only in case map to one variable; the later one wins, as in a dict.
        vars.reverse();
        let mut seen = std::collections::BTreeSet::new();
        vars.retain(|(name, _)| seen.insert(name.clone()));
        vars.sort();
        vars
    }

    /// The channel names, sorted.
    pub fn channel_names(&self) -> Vec<String> {
        match self.properties.get("channel_input_dirs") {
            Some(Value::Object(dirs)) => dirs.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// The toolkit's value rendering: a string as it is, `None` as empty, anything else as compact
/// JSON with sorted keys and ASCII escapes.
pub(crate) fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => to_json_compact_sorted(other),
    }
}

struct InstanceGroup {
    name: String,
    hosts: Vec<Value>,
    raw: Value,
}

/// `resourceconfig.json`'s error; `problem` follows the file's name.
fn resource_config(problem: &str) -> JobError {
    JobError::ResourceConfig(problem.to_string())
}

fn instance_groups(rc: &Map<String, Value>) -> Result<Vec<InstanceGroup>, JobError> {
    let Some(groups) = rc.get("instance_groups").filter(|g| !g.is_null()) else {
        return Ok(Vec::new());
    };
    let groups = groups
        .as_array()
        .ok_or_else(|| resource_config(": 'instance_groups' must be a list"))?;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let name = g
                .get("instance_group_name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    resource_config(&format!(": instance_groups[{i}] has no 'instance_group_name'"))
                })?;
            let hosts = g
                .get("hosts")
                .and_then(Value::as_array)
                .ok_or_else(|| resource_config(&format!(": instance_groups[{i}] has no 'hosts' list")))?;
            Ok(InstanceGroup {
                name: name.to_string(),
                hosts: hosts.clone(),
                raw: g.clone(),
            })
        })
        .collect()
}

/// Python's `name in value` for the shapes a group list can take.
fn contains(value: &Value, name: &str) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some(name)),
        Value::String(s) => s.contains(name),
        Value::Object(map) => map.contains_key(name),
        _ => false,
    }
}

/// Python truthiness of a decoded JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests;
