//! Request validation as the service validates (required members, name patterns and lengths,
//! enums, types), and beyond it: a member the operation does not know is refused by name, with
//! the closest known member suggested, so that a typo (`ModelDataURL`) never deploys an empty
//! model. The shapes themselves are declared in [`super::shapes`] and [`crate::request_shapes`].

use serde_json::{Map, Value};

use super::wire::{quote, ApiError};
use crate::request_shapes::{Member, Shape};

/// How long a resource name may be.
const NAME_MAX: usize = 63;
/// How different a misspelt member may be from the one it suggests (Jaro-Winkler similarity).
const SUGGEST_ABOVE: f64 = 0.8;

/// Checks the request body of `operation` against `shape`; every problem is listed in one
/// `ValidationException`, as the service lists them.
pub fn check(operation: &str, shape: &Shape, body: &Value) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    walk(shape, body, "", &mut problems);
    match problems.len() {
        0 => Ok(()),
        1 => Err(ApiError::validation(format!(
            "1 validation error detected in {operation}: {}",
            problems[0]
        ))),
        n => Err(ApiError::validation(format!(
            "{n} validation errors detected in {operation}: {}",
            problems.join("; ")
        ))),
    }
}

fn walk(shape: &Shape, value: &Value, at: &str, problems: &mut Vec<String>) {
    let place = if at.is_empty() {
        "the request".to_string()
    } else {
        format!("'{at}'")
    };
    match (shape, value) {
        (Shape::Any, _) => {}
        (Shape::Struct(members), Value::Object(object)) => walk_struct(members, object, at, problems),
        (Shape::List(item, max), Value::Array(items)) => {
            if items.len() > *max {
                problems.push(format!(
                    "{place} has {} entries; at most {max} are allowed",
                    items.len()
                ));
            }
            for (i, entry) in items.iter().enumerate() {
                walk(item, entry, &format!("{at}[{i}]"), problems);
            }
        }
        (Shape::Map(max), Value::Object(map)) => {
            if map.len() > *max {
                problems.push(format!(
                    "{place} has {} entries; at most {max} are allowed",
                    map.len()
                ));
            }
            for (key, entry) in map {
                if !entry.is_string() {
                    problems.push(format!("{at}[{}] must be a string", quote(key)));
                }
            }
        }
        (Shape::Str(max), Value::String(text)) => {
            if text.len() > *max {
                problems.push(format!(
                    "{place} is {} bytes long; at most {max} are allowed",
                    text.len()
                ));
            }
        }
        (Shape::Name, Value::String(name)) => {
            if !is_name(name) {
                problems.push(format!(
                    "Value {} at {place} failed to satisfy constraint: Member must satisfy regular \
                     expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}} and have length less than \
                     or equal to {NAME_MAX}",
                    quote(name)
                ));
            }
        }
        (Shape::Enum(allowed), Value::String(text)) => {
            if !allowed.contains(&text.as_str()) {
                problems.push(format!(
                    "Value {} at {place} failed to satisfy constraint: Member must satisfy enum value \
                     set: [{}]",
                    quote(text),
                    allowed.join(", ")
                ));
            }
        }
        (Shape::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        (Shape::Bool, Value::Bool(_)) => {}
        (_, Value::Null) => {}
        (shape, _) => problems.push(format!("{place} must be {}", expected(shape))),
    }
}

fn walk_struct(members: &[Member], object: &Map<String, Value>, at: &str, problems: &mut Vec<String>) {
    let path = |name: &str| {
        if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        }
    };
    for member in members {
        match object.get(member.name) {
            None | Some(Value::Null) if member.required_by_service() => problems.push(format!(
                "Value null at '{}' failed to satisfy constraint: Member must not be null",
                path(member.name)
            )),
            None => {}
            Some(value) => walk(member.shape, value, &path(member.name), problems),
        }
    }
    for key in object.keys() {
        if members.iter().any(|m| m.name == key) {
            continue;
        }
        let mut message = format!(
            "unknown member {} at '{}'",
            quote(key),
            if at.is_empty() { "the request" } else { at }
        );
        if let Some(near) = nearest(key, members) {
            message.push_str(&format!("; did you mean '{near}'?"));
        }
        problems.push(message);
    }
}

/// The known member closest to a misspelt one, when one is close enough.
fn nearest(key: &str, members: &[Member]) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    members
        .iter()
        .map(|m| (strsim::jaro_winkler(&lower, &m.name.to_ascii_lowercase()), m.name))
        .filter(|(score, _)| *score > SUGGEST_ABOVE)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, at most 63 characters.
pub fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= NAME_MAX
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn expected(shape: &Shape) -> &'static str {
    match shape {
        Shape::Struct(_) => "an object",
        Shape::List(..) => "a list",
        Shape::Map(_) => "an object of strings",
        Shape::Str(_) | Shape::Name | Shape::Enum(_) => "a string",
        Shape::Int => "an integer",
        Shape::Bool => "a boolean",
        Shape::Any => "any value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_shapes::{opt, req};
    use serde_json::json;

    static CONTAINER: Shape = Shape::Struct(&[
        opt("Image", &Shape::Str(255)),
        opt("ModelDataUrl", &Shape::Str(1024)),
    ]);
    static REQUEST: Shape = Shape::Struct(&[
        req("ModelName", &Shape::Name),
        opt("Containers", &Shape::List(&CONTAINER, 15)),
        opt("Mode", &Shape::Enum(&["Serial", "Direct"])),
    ]);

    fn message(body: Value) -> String {
        check("CreateModel", &REQUEST, &body).unwrap_err().message
    }

    #[test]
    fn a_valid_request_passes() {
        let body = json!({"ModelName": "m-1", "Containers": [{"Image": "x"}], "Mode": "Serial"});
        check("CreateModel", &REQUEST, &body).unwrap();
    }

    #[test]
    fn an_unknown_member_is_named_with_the_nearest_known_one() {
        let m = message(json!({"ModelName": "m", "Containers": [{"Image": "x", "ModelDataURL": "u"}]}));
        assert!(
            m.contains("unknown member \"ModelDataURL\" at 'Containers[0]'"),
            "{m}"
        );
        assert!(m.contains("did you mean 'ModelDataUrl'?"), "{m}");
        let far = message(json!({"ModelName": "m", "Zzz": 1}));
        assert!(!far.contains("did you mean"), "{far}");
    }

    #[test]
    fn missing_members_bad_names_and_enums_are_each_listed() {
        let m = message(json!({"Mode": "Parallel"}));
        assert!(m.starts_with("2 validation errors"), "{m}");
        assert!(m.contains("Value null at 'ModelName'"), "{m}");
        assert!(m.contains("enum value set: [Serial, Direct]"), "{m}");
        assert!(message(json!({"ModelName": "-bad"})).contains("regular expression"));
        assert!(message(json!({"ModelName": "a".repeat(64)})).contains("regular expression"));
        assert!(message(json!({"ModelName": 3})).contains("'ModelName' must be a string"));
    }

    #[test]
    fn names_follow_the_service_pattern() {
        assert!(is_name("abalone-1") && is_name("a--b") && is_name("A"));
        assert!(!is_name("") && !is_name("a-") && !is_name("a_b") && !is_name("a.b"));
    }
}
