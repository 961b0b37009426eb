//! The toolkit's `to_cmd_args`: hyperparameters as a command line (docs/contract.md (Training)), which the
//! toolkit exports as `SM_USER_ARGS`.

use modelstage_contract::python::str_of;
use serde_json::{Map, Value};

/// `[name1, value1, name2, value2, ...]` with the keys sorted; `--key` for names longer than one
/// character, `-k` for one character, `""` for an empty name; values as Python's `str()`, a mapping
/// as `k1=v1,k2=v2` with its keys sorted, `None` as `""`.
pub(crate) fn to_cmd_args(hyperparameters: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = hyperparameters.keys().collect();
    // UTF-8 byte order is code-point order, which is how Python sorts strings.
    keys.sort();
    let mut args = Vec::with_capacity(keys.len() * 2);
    for key in keys {
        args.push(arg_name(key));
        args.push(arg_value(&hyperparameters[key.as_str()]));
    }
    args
}

fn arg_name(key: &str) -> String {
    match key.chars().count() {
        0 => String::new(),
        1 => format!("-{key}"),
        _ => format!("--{key}"),
    }
}

fn arg_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Object(map) => {
            let mut items: Vec<(&String, &Value)> = map.iter().collect();
            items.sort_by(|a, b| a.0.cmp(b.0));
            // Inside a mapping the toolkit formats with "%s=%s", so None is "None" here.
            items
                .iter()
                .map(|(k, v)| format!("{k}={}", str_of(v)))
                .collect::<Vec<_>>()
                .join(",")
        }
        other => str_of(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contract_example() {
        // docs/contract.md (Training): the decoded hyperparameters of the toolkit's documented example
        // (ENVIRONMENT_VARIABLES.md of sagemaker-training-toolkit) minus the strings.
        let hps = json!({"d": {"b": 2, "a": "x"}, "epochs": 10, "flag": true, "learning-rate": 0.01,
                         "lst": [1, 2], "x": null});
        let args = to_cmd_args(hps.as_object().unwrap());
        let expected = [
            "-d",
            "a=x,b=2",
            "--epochs",
            "10",
            "--flag",
            "True",
            "--learning-rate",
            "0.01",
            "--lst",
            "[1, 2]",
            "-x",
            "",
        ];
        assert_eq!(args, expected);
    }

    #[test]
    fn empty_name_and_none_inside_a_mapping() {
        let hps = json!({"": "v", "m": {"z": null, "a": false}});
        assert_eq!(
            to_cmd_args(hps.as_object().unwrap()),
            ["", "v", "-m", "a=False,z=None"]
        );
    }
}
