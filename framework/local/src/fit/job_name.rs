//! Training job names: SageMaker's pattern, and the timestamped default the SageMaker SDK makes
//! (`<base>-YYYY-MM-DD-HH-MM-SS-mmm`, UTC) from the stage library's or the image's name.

use std::path::Path;

use anyhow::bail;

/// SageMaker's limit on a training job name.
const MAX_LEN: usize = 63;

/// Checks SageMaker's pattern `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`.
pub fn check(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        bail!(
            "'{name}' is not a valid training job name: use 1 to 63 letters, digits and hyphens, \
             starting and ending with a letter or digit"
        )
    }
}

/// A base name from the stage file: `liblinear_learner.so` gives `linear-learner`.
pub fn base_name(stage: &Path) -> String {
    let stem = stage.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let stem = stem.strip_prefix("lib").filter(|s| !s.is_empty()).unwrap_or(stem);
    cleaned(stem)
}

/// A base name from an image reference, as the SageMaker SDK's `base_name_from_image` takes it:
/// the last path component without tag or digest, so `host:5000/team/linear_learner:1.0@sha256:…`
/// gives `linear-learner`.
pub fn image_base_name(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    // After the last '/', a ':' can only start the tag (a registry port comes before a '/').
    let repository = last.split(':').next().unwrap_or(last);
    cleaned(repository)
}

/// Letters and digits kept, anything else a hyphen, none at either end; `modelstage` if nothing
/// is left.
fn cleaned(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "modelstage".to_string()
    } else {
        trimmed.to_string()
    }
}

/// `<base>-YYYY-MM-DD-HH-MM-SS-mmm` for the UTC instant `millis` after the Unix epoch, with the
/// base shortened so that the whole name fits SageMaker's limit.
pub fn timestamped(base: &str, millis: u128) -> String {
    let stamp = utc_stamp(millis);
    let room = MAX_LEN - stamp.len() - 1;
    let base: String = base.chars().take(room).collect();
    format!("{}-{stamp}", base.trim_end_matches('-'))
}

fn utc_stamp(millis: u128) -> String {
    let secs = (millis / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}-{:02}-{:02}-{:02}-{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis % 1000
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        // `date -u -d @0` and `date -u -d @1709210096` (2024 is a leap year: Feb 29 exists).
        assert_eq!(timestamped("echo", 0), "echo-1970-01-01-00-00-00-000");
        assert_eq!(
            timestamped("echo", 1_709_210_096_789),
            "echo-2024-02-29-12-34-56-789"
        );
        let long = timestamped(&"x".repeat(80), 0);
        assert_eq!(long.len(), MAX_LEN);
        assert!(check(&long).is_ok());
    }

    #[test]
    fn base_names() {
        assert_eq!(
            base_name(Path::new("target/debug/liblinear_learner.so")),
            "linear-learner"
        );
        assert_eq!(base_name(Path::new("libecho.so")), "echo");
        assert_eq!(base_name(Path::new("___.so")), "modelstage");
    }

    #[test]
    fn image_base_names() {
        assert_eq!(image_base_name("modelstage/featurizer:latest"), "featurizer");
        assert_eq!(image_base_name("echo"), "echo");
        // A registry port is not a tag; a digest is dropped.
        assert_eq!(
            image_base_name("localhost:5000/team/linear_learner:1.0@sha256:0123abcd"),
            "linear-learner"
        );
        assert_eq!(image_base_name("localhost:5000/featurizer"), "featurizer");
        assert_eq!(image_base_name(":tag"), "modelstage");
    }

    #[test]
    fn names_follow_the_sagemaker_pattern() {
        assert!(check("abalone-ll-1").is_ok());
        for bad in ["", "-a", "a-", "a_b", "a b", &"a".repeat(64)] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
