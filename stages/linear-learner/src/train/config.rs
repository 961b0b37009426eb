//! The Linear Learner hyperparameters (the stage README): parsed, range-checked
//! and with every `auto` resolved to what this implementation does.
//!
//! A hyperparameter this implementation does not know fails training with
//! the list of the known ones; a value it does not support (a loss that does
//! not fit the predictor type, `positive_example_weight_mult=auto`) fails with
//! a message saying so. Nothing is ignored silently.

use modelstage_sdk::training::Hyperparameters;
use modelstage_sdk::StageError;

/// Every hyperparameter name this stage reads.
pub const KNOWN: &[&str] = &[
    "predictor_type",
    "num_classes",
    "feature_dim",
    "mini_batch_size",
    "epochs",
    "learning_rate",
    "optimizer",
    "loss",
    "l1",
    "wd",
    "momentum",
    "beta_1",
    "beta_2",
    "bias_lr_mult",
    "bias_wd_mult",
    "use_bias",
    "normalize_data",
    "normalize_label",
    "unbias_data",
    "unbias_label",
    "num_point_for_scaler",
    "num_models",
    "num_calibration_samples",
    "init_method",
    "init_scale",
    "init_sigma",
    "init_bias",
    "use_lr_scheduler",
    "lr_scheduler_step",
    "lr_scheduler_factor",
    "lr_scheduler_minimum_lr",
    "early_stopping_patience",
    "early_stopping_tolerance",
    "margin",
    "quantile",
    "loss_insensitivity",
    "huber_delta",
    "positive_example_weight_mult",
    "binary_classifier_model_selection_criteria",
    "target_recall",
    "target_precision",
    "f_beta",
    "accuracy_top_k",
    "balance_multiclass_weights",
    "seed",
];

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictorType {
    Regressor,
    BinaryClassifier,
    MulticlassClassifier,
}

impl PredictorType {
    pub fn name(self) -> &'static str {
        match self {
            PredictorType::Regressor => "regressor",
            PredictorType::BinaryClassifier => "binary_classifier",
            PredictorType::MulticlassClassifier => "multiclass_classifier",
        }
    }

    pub fn parse(name: &str) -> Option<PredictorType> {
        match name {
            "regressor" => Some(PredictorType::Regressor),
            "binary_classifier" => Some(PredictorType::BinaryClassifier),
            "multiclass_classifier" => Some(PredictorType::MulticlassClassifier),
            _ => None,
        }
    }
}

/// The training objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    Squared,
    Absolute,
    EpsInsensitiveSquared { eps: f64 },
    EpsInsensitiveAbsolute { eps: f64 },
    Quantile { q: f64 },
    Huber { delta: f64 },
    Logistic,
    Hinge { margin: f64 },
    Softmax,
}

impl Loss {
    /// The hyperparameter spelling.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Squared => "squared_loss",
            Loss::Absolute => "absolute_loss",
            Loss::EpsInsensitiveSquared { .. } => "eps_insensitive_squared_loss",
            Loss::EpsInsensitiveAbsolute { .. } => "eps_insensitive_absolute_loss",
            Loss::Quantile { .. } => "quantile_loss",
            Loss::Huber { .. } => "huber_loss",
            Loss::Logistic => "logistic",
            Loss::Hinge { .. } => "hinge_loss",
            Loss::Softmax => "softmax_loss",
        }
    }
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimizer {
    Sgd,
    Adam,
    RmsProp,
}

impl Optimizer {
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Adam => "adam",
            Optimizer::RmsProp => "rmsprop",
        }
    }

    /// The learning rate `auto` stands for, on normalised data.
    pub fn default_learning_rate(self) -> f64 {
        match self {
            Optimizer::Sgd => 0.05,
            Optimizer::Adam | Optimizer::RmsProp => 0.03,
        }
    }
}

/// How the weights start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Uniform { scale: f64 },
    Normal { sigma: f64 },
}

/// How a binary classifier's threshold (and the best of `num_models`) is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Criterion {
    Accuracy,
    FBeta {
        beta: f64,
    },
    PrecisionAtTargetRecall {
        target: f64,
    },
    RecallAtTargetPrecision {
        target: f64,
    },
    /// Smallest loss; the threshold stays at its default.
    Loss,
}

/// The weight of positive examples of a binary classifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PositiveWeight {
    Fixed(f64),
    /// Positives weigh `negatives / positives` (counted on the scaler sample).
    Balanced,
}

/// The learning-rate schedule: `lr × factor^(updates / step)`, never below `minimum`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduler {
    pub step: u64,
    pub factor: f64,
    pub minimum: f64,
}

/// The resolved training configuration. `Option` fields left `None` are the
/// ones `num_models` varies across the models it trains side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub predictor_type: PredictorType,
    /// `num_classes` for a multiclass classifier, else 1.
    pub num_classes: usize,
    pub feature_dim: Option<usize>,
    pub mini_batch_size: usize,
    pub epochs: u64,
    pub learning_rate: Option<f64>,
    pub optimizer: Optimizer,
    pub loss: Loss,
    pub l1: Option<f64>,
    pub wd: Option<f64>,
    pub momentum: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    pub bias_lr_mult: f64,
    pub bias_wd_mult: f64,
    pub use_bias: bool,
    pub normalize_data: bool,
    pub normalize_label: bool,
    pub unbias_data: bool,
    pub unbias_label: bool,
    pub num_point_for_scaler: u64,
    pub num_models: usize,
    pub num_calibration_samples: usize,
    pub init: Init,
    pub init_bias: f64,
    pub scheduler: Option<Scheduler>,
    pub early_stopping_patience: u64,
    pub early_stopping_tolerance: f64,
    pub positive_weight: PositiveWeight,
    pub criterion: Criterion,
    pub accuracy_top_k: usize,
    pub balance_multiclass_weights: bool,
    pub seed: u64,
}

/// `auto` (or absent) gives `None`; anything else must be a number.
fn auto_float(hp: &Hyperparameters, name: &str) -> Result<Option<f64>, StageError> {
    if is_auto(hp, name) {
        return Ok(None);
    }
    hp.float(name)
}

fn auto_int(hp: &Hyperparameters, name: &str) -> Result<Option<u64>, StageError> {
    if is_auto(hp, name) {
        return Ok(None);
    }
    hp.positive_int(name)
}

fn auto_bool(hp: &Hyperparameters, name: &str) -> Result<Option<bool>, StageError> {
    if is_auto(hp, name) {
        return Ok(None);
    }
    hp.bool(name)
}

fn is_auto(hp: &Hyperparameters, name: &str) -> bool {
    hp.string(name).is_some_and(|s| s.trim() == "auto")
}

/// Checks `lo <(=) x <(=) hi` and names the hyperparameter and the range.
fn check_range(
    name: &str,
    x: Option<f64>,
    lo: f64,
    lo_inclusive: bool,
    hi: f64,
    hi_inclusive: bool,
) -> Result<Option<f64>, StageError> {
    let Some(v) = x else { return Ok(None) };
    let above = if lo_inclusive { v >= lo } else { v > lo };
    let below = if hi_inclusive { v <= hi } else { v < hi };
    if above && below && v.is_finite() {
        return Ok(Some(v));
    }
    let lo_b = if lo_inclusive { '[' } else { '(' };
    let hi_b = if hi_inclusive { ']' } else { ')' };
    let hi_s = if hi.is_infinite() {
        "inf".to_string()
    } else {
        hi.to_string()
    };
    Err(StageError::bad_request(format!(
        "hyperparameter '{name}' must be in {lo_b}{lo}, {hi_s}{hi_b}, got {v}"
    )))
}

const INF: f64 = f64::INFINITY;

fn positive(hp: &Hyperparameters, name: &str) -> Result<Option<f64>, StageError> {
    check_range(name, auto_float(hp, name)?, 0.0, false, INF, false)
}

fn non_negative(hp: &Hyperparameters, name: &str) -> Result<Option<f64>, StageError> {
    check_range(name, auto_float(hp, name)?, 0.0, true, INF, false)
}

fn unit_open(hp: &Hyperparameters, name: &str) -> Result<Option<f64>, StageError> {
    check_range(name, auto_float(hp, name)?, 0.0, false, 1.0, false)
}

fn unit_half_open(hp: &Hyperparameters, name: &str) -> Result<Option<f64>, StageError> {
    check_range(name, auto_float(hp, name)?, 0.0, true, 1.0, false)
}

fn to_usize(name: &str, v: u64) -> Result<usize, StageError> {
    usize::try_from(v)
        .map_err(|_| StageError::bad_request(format!("hyperparameter '{name}' is too large: {v}")))
}

impl Config {
    /// Reads and checks every hyperparameter.
    pub fn from_hyperparameters(hp: &Hyperparameters) -> Result<Config, StageError> {
        hp.reject_unknown(KNOWN)?;
        let predictor_type = match hp.string("predictor_type") {
            None => {
                return Err(StageError::bad_request(
                    "hyperparameter 'predictor_type' is required: regressor, binary_classifier or \
                     multiclass_classifier",
                ))
            }
            Some(s) => PredictorType::parse(&s).ok_or_else(|| {
                StageError::bad_request(format!(
                    "hyperparameter 'predictor_type' must be one of regressor, binary_classifier, \
                     multiclass_classifier, got '{s}'"
                ))
            })?,
        };
        let num_classes =
            match (predictor_type, hp.positive_int("num_classes")?) {
                (PredictorType::MulticlassClassifier, None) => return Err(StageError::bad_request(
                    "hyperparameter 'num_classes' is required when predictor_type is multiclass_classifier",
                )),
                (PredictorType::MulticlassClassifier, Some(n)) if !(3..=1_000_000).contains(&n) => {
                    return Err(StageError::bad_request(format!(
                        "hyperparameter 'num_classes' must be between 3 and 1000000 for a multiclass \
                     classifier, got {n} (use binary_classifier for two classes)"
                    )))
                }
                (PredictorType::MulticlassClassifier, Some(n)) => to_usize("num_classes", n)?,
                (_, _) => 1,
            };
        let feature_dim = auto_int(hp, "feature_dim")?
            .map(|v| to_usize("feature_dim", v))
            .transpose()?;
        let mini_batch_size = to_usize(
            "mini_batch_size",
            hp.positive_int("mini_batch_size")?.unwrap_or(1000),
        )?;
        let epochs = hp.positive_int("epochs")?.unwrap_or(15);

        let optimizer = match hp
            .one_of("optimizer", &["auto", "sgd", "adam", "rmsprop"])?
            .as_deref()
        {
            Some("sgd") => Optimizer::Sgd,
            Some("rmsprop") => Optimizer::RmsProp,
            _ => Optimizer::Adam,
        };
        let loss = Self::loss(hp, predictor_type)?;

        let learning_rate = positive(hp, "learning_rate")?;
        let l1 = non_negative(hp, "l1")?;
        let wd = non_negative(hp, "wd")?;
        let momentum = unit_half_open(hp, "momentum")?.unwrap_or(0.0);
        let beta_1 = unit_half_open(hp, "beta_1")?.unwrap_or(0.9);
        let beta_2 = unit_half_open(hp, "beta_2")?.unwrap_or(0.999);
        let bias_lr_mult = positive(hp, "bias_lr_mult")?.unwrap_or(1.0);
        let bias_wd_mult = non_negative(hp, "bias_wd_mult")?.unwrap_or(0.0);
        let use_bias = hp.bool("use_bias")?.unwrap_or(true);
        let regressor = predictor_type == PredictorType::Regressor;
        let normalize_data = auto_bool(hp, "normalize_data")?.unwrap_or(true);
        // Labels are normalised for regression only; classification labels are classes.
        let normalize_label = auto_bool(hp, "normalize_label")?.unwrap_or(regressor) && regressor;
        let unbias_data = auto_bool(hp, "unbias_data")?.unwrap_or(true);
        let unbias_label = auto_bool(hp, "unbias_label")?.unwrap_or(true);
        let num_point_for_scaler = hp.positive_int("num_point_for_scaler")?.unwrap_or(10_000);
        let num_models = auto_int(hp, "num_models")?
            .map(|v| to_usize("num_models", v))
            .transpose()?;
        let num_calibration_samples = auto_int(hp, "num_calibration_samples")?
            .map(|v| to_usize("num_calibration_samples", v))
            .transpose()?
            .unwrap_or(100_000);

        let init = match hp.one_of("init_method", &["uniform", "normal"])?.as_deref() {
            Some("normal") => Init::Normal {
                sigma: positive(hp, "init_sigma")?.unwrap_or(0.01),
            },
            _ => Init::Uniform {
                scale: positive(hp, "init_scale")?.unwrap_or(0.07),
            },
        };
        let init_bias = hp.float("init_bias")?.unwrap_or(0.0);

        let scheduler = if hp.bool("use_lr_scheduler")?.unwrap_or(true) {
            Some(Scheduler {
                step: auto_int(hp, "lr_scheduler_step")?.unwrap_or(100),
                factor: unit_open(hp, "lr_scheduler_factor")?.unwrap_or(0.9),
                minimum: positive(hp, "lr_scheduler_minimum_lr")?.unwrap_or(1e-5),
            })
        } else {
            None
        };
        let early_stopping_patience = hp.positive_int("early_stopping_patience")?.unwrap_or(3);
        let early_stopping_tolerance = positive(hp, "early_stopping_tolerance")?.unwrap_or(0.001);

        let positive_weight = match hp
            .string("positive_example_weight_mult")
            .as_deref()
            .map(str::trim)
        {
            None => PositiveWeight::Fixed(1.0),
            Some("balanced") => PositiveWeight::Balanced,
            Some("auto") => {
                return Err(StageError::bad_request(
                    "hyperparameter 'positive_example_weight_mult' = 'auto' is not supported yet; \
                     use 'balanced' or a positive number",
                ))
            }
            Some(_) => PositiveWeight::Fixed(positive(hp, "positive_example_weight_mult")?.unwrap_or(1.0)),
        };
        let criterion = match hp
            .one_of(
                "binary_classifier_model_selection_criteria",
                &[
                    "accuracy",
                    "f1",
                    "f_beta",
                    "precision_at_target_recall",
                    "recall_at_target_precision",
                    "loss_function",
                    "cross_entropy_loss",
                ],
            )?
            .as_deref()
        {
            Some("f1") => Criterion::FBeta { beta: 1.0 },
            Some("f_beta") => Criterion::FBeta {
                beta: positive(hp, "f_beta")?.unwrap_or(1.0),
            },
            Some("precision_at_target_recall") => Criterion::PrecisionAtTargetRecall {
                target: unit_open(hp, "target_recall")?.unwrap_or(0.8),
            },
            Some("recall_at_target_precision") => Criterion::RecallAtTargetPrecision {
                target: unit_open(hp, "target_precision")?.unwrap_or(0.8),
            },
            Some("loss_function") | Some("cross_entropy_loss") => Criterion::Loss,
            _ => Criterion::Accuracy,
        };
        // Read so that a malformed value fails even when the criterion does not use it.
        positive(hp, "f_beta")?;
        unit_open(hp, "target_recall")?;
        unit_open(hp, "target_precision")?;
        let accuracy_top_k = to_usize("accuracy_top_k", hp.positive_int("accuracy_top_k")?.unwrap_or(3))?;
        let balance_multiclass_weights = hp.bool("balance_multiclass_weights")?.unwrap_or(false);
        let seed = hp.non_negative_int("seed")?.unwrap_or(0);

        if positive_weight != PositiveWeight::Fixed(1.0) && predictor_type != PredictorType::BinaryClassifier
        {
            return Err(StageError::bad_request(
                "hyperparameter 'positive_example_weight_mult' applies to binary_classifier only",
            ));
        }
        if balance_multiclass_weights && predictor_type != PredictorType::MulticlassClassifier {
            return Err(StageError::bad_request(
                "hyperparameter 'balance_multiclass_weights' applies to multiclass_classifier only",
            ));
        }

        Ok(Config {
            predictor_type,
            num_classes,
            feature_dim,
            mini_batch_size,
            epochs,
            learning_rate,
            optimizer,
            loss,
            l1,
            wd,
            momentum,
            beta_1,
            beta_2,
            bias_lr_mult,
            bias_wd_mult,
            use_bias,
            normalize_data,
            normalize_label,
            unbias_data,
            unbias_label,
            num_point_for_scaler,
            num_models: num_models.unwrap_or(AUTO_NUM_MODELS),
            num_calibration_samples,
            init,
            init_bias,
            scheduler,
            early_stopping_patience,
            early_stopping_tolerance,
            positive_weight,
            criterion,
            accuracy_top_k,
            balance_multiclass_weights,
            seed,
        })
    }

    fn loss(hp: &Hyperparameters, predictor_type: PredictorType) -> Result<Loss, StageError> {
        let name = hp.string("loss").unwrap_or_else(|| "auto".to_string());
        let margin = check_range("margin", auto_float(hp, "margin")?, 0.0, true, INF, false)?.unwrap_or(1.0);
        let q = unit_open(hp, "quantile")?.unwrap_or(0.5);
        let eps = positive(hp, "loss_insensitivity")?.unwrap_or(0.01);
        let delta = check_range(
            "huber_delta",
            auto_float(hp, "huber_delta")?,
            0.0,
            false,
            INF,
            false,
        )?
        .unwrap_or(1.0);
        let loss = match (name.trim(), predictor_type) {
            ("auto", PredictorType::Regressor) => Loss::Squared,
            ("auto", PredictorType::BinaryClassifier) => Loss::Logistic,
            ("auto", PredictorType::MulticlassClassifier) => Loss::Softmax,
            ("squared_loss", _) => Loss::Squared,
            ("absolute_loss", _) => Loss::Absolute,
            ("eps_insensitive_squared_loss", _) => Loss::EpsInsensitiveSquared { eps },
            ("eps_insensitive_absolute_loss", _) => Loss::EpsInsensitiveAbsolute { eps },
            ("quantile_loss", _) => Loss::Quantile { q },
            ("huber_loss", _) => Loss::Huber { delta },
            ("logistic", _) => Loss::Logistic,
            ("hinge_loss", _) => Loss::Hinge { margin },
            ("softmax_loss", _) => Loss::Softmax,
            (other, _) => {
                return Err(StageError::bad_request(format!(
                    "hyperparameter 'loss' must be one of auto, squared_loss, absolute_loss, \
                     eps_insensitive_squared_loss, eps_insensitive_absolute_loss, quantile_loss, huber_loss, \
                     logistic, hinge_loss, softmax_loss, got '{other}'"
                )))
            }
        };
        let fits = match predictor_type {
            PredictorType::Regressor => !matches!(loss, Loss::Logistic | Loss::Hinge { .. } | Loss::Softmax),
            PredictorType::BinaryClassifier => matches!(loss, Loss::Logistic | Loss::Hinge { .. }),
            PredictorType::MulticlassClassifier => matches!(loss, Loss::Softmax),
        };
        if !fits {
            return Err(StageError::bad_request(format!(
                "loss '{}' is not supported with predictor_type {}; use {}",
                loss.name(),
                predictor_type.name(),
                match predictor_type {
                    PredictorType::Regressor =>
                        "squared_loss, absolute_loss, eps_insensitive_squared_loss, \
                         eps_insensitive_absolute_loss, quantile_loss or huber_loss",
                    PredictorType::BinaryClassifier => "logistic or hinge_loss",
                    PredictorType::MulticlassClassifier => "softmax_loss",
                }
            )));
        }
        Ok(loss)
    }
}

/// How many models `num_models=auto` trains side by side.
pub const AUTO_NUM_MODELS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hp(v: serde_json::Value) -> Hyperparameters {
        Hyperparameters::from_map(v.as_object().unwrap().clone())
    }

    #[test]
    fn defaults_resolve_auto() {
        let c = Config::from_hyperparameters(&hp(json!({"predictor_type": "regressor"}))).unwrap();
        assert_eq!(c.mini_batch_size, 1000);
        assert_eq!(c.epochs, 15);
        assert_eq!(c.optimizer, Optimizer::Adam);
        assert_eq!(c.loss, Loss::Squared);
        assert!(c.normalize_label && c.normalize_data && c.use_bias);
        assert_eq!(c.num_models, AUTO_NUM_MODELS);
        assert_eq!(c.learning_rate, None);
        let b = Config::from_hyperparameters(&hp(json!({"predictor_type": "binary_classifier",
            "normalize_label": "auto", "learning_rate": "auto"})))
        .unwrap();
        assert_eq!(b.loss, Loss::Logistic);
        assert!(!b.normalize_label, "classification labels are never normalised");
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        let cases = [
            (json!({}), "'predictor_type' is required"),
            (json!({"predictor_type": "ranker"}), "must be one of regressor"),
            (
                json!({"predictor_type": "multiclass_classifier"}),
                "'num_classes' is required",
            ),
            (
                json!({"predictor_type": "multiclass_classifier", "num_classes": 2}),
                "between 3 and",
            ),
            (
                json!({"predictor_type": "regressor", "loss": "logistic"}),
                "not supported with predictor_type",
            ),
            (
                json!({"predictor_type": "regressor", "epochs": "ten"}),
                "'epochs'",
            ),
            (
                json!({"predictor_type": "regressor", "momentum": 1.5}),
                "'momentum' must be in [0, 1)",
            ),
            (
                json!({"predictor_type": "regressor", "learning_rate": 0}),
                "'learning_rate'",
            ),
            (
                json!({"predictor_type": "regressor", "kernel": "rbf"}),
                "'kernel'",
            ),
            (
                json!({"predictor_type": "binary_classifier", "positive_example_weight_mult": "auto"}),
                "not supported yet",
            ),
            (
                json!({"predictor_type": "regressor", "positive_example_weight_mult": 2}),
                "binary_classifier only",
            ),
        ];
        for (v, want) in cases {
            let err = Config::from_hyperparameters(&hp(v.clone())).unwrap_err();
            assert!(err.message.contains(want), "{v}: {}", err.message);
        }
    }

    #[test]
    fn reads_python_spellings() {
        let c = Config::from_hyperparameters(&hp(json!({"predictor_type": "binary_classifier",
            "use_bias": "False", "feature_dim": "10", "mini_batch_size": 32.0,
            "binary_classifier_model_selection_criteria": "f_beta", "f_beta": "2",
            "positive_example_weight_mult": "balanced", "optimizer": "sgd"})))
        .unwrap();
        assert!(!c.use_bias);
        assert_eq!(c.feature_dim, Some(10));
        assert_eq!(c.mini_batch_size, 32);
        assert_eq!(c.criterion, Criterion::FBeta { beta: 2.0 });
        assert_eq!(c.positive_weight, PositiveWeight::Balanced);
        assert_eq!(c.optimizer, Optimizer::Sgd);
    }
}
