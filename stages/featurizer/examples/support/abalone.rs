//! What the featurizer's examples share: the abalone pipeline's
//! hyperparameters and the repository's copy of the data set.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The abalone featurizer's hyperparameters, as the example pipeline trains it.
pub fn hyperparameters() -> BTreeMap<String, String> {
    [
        (
            "columns",
            "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight",
        ),
        ("categorical", "sex"),
        ("label", "rings"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `examples/abalone/data/abalone.csv` of the repository.
#[allow(dead_code)] // Not every example reads the bundled copy.
pub fn data_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/abalone/data/abalone.csv")
}
