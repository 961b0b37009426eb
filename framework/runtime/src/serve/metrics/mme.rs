//! The metrics of a multi-model endpoint: the models loaded, the loads by
//! outcome (a 507 is a load refused for the memory budget), the unloads by
//! reason, and how long the loads that succeeded took. The registry of
//! models records them ([`super::super::mme::Registry`]); they exist only on
//! a multi-model endpoint.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::{get, load_buckets, Histograms, StageLabels};

/// How a load ended (`outcome`). A name already loaded (409) is not a load:
/// `POST /models` counts it in `modelstage_http_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadOutcome {
    /// Every worker loaded it.
    Loaded,
    /// 507: past the memory budget.
    InsufficientStorage,
    /// `model_fn` or the model's files failed (400), a worker died
    /// loading it (500), or the time limit passed (504).
    Failed,
}

/// Why a loaded model left the endpoint (`reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnloadReason {
    /// `DELETE /models/{name}`.
    Request,
    /// The least recently used, to make room (`MODELSTAGE_MME_EVICT=lru`).
    Evicted,
    /// A replacement worker could not reload it, so every worker let it go.
    ReloadFailed,
}

impl LoadOutcome {
    fn label(self) -> &'static str {
        match self {
            LoadOutcome::Loaded => "loaded",
            LoadOutcome::InsufficientStorage => "insufficient_storage",
            LoadOutcome::Failed => "failed",
        }
    }
}

impl UnloadReason {
    fn label(self) -> &'static str {
        match self {
            UnloadReason::Request => "request",
            UnloadReason::Evicted => "evicted",
            UnloadReason::ReloadFailed => "reload_failed",
        }
    }
}

/// `stage` and `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct LoadLabels {
    stage: &'static str,
    outcome: &'static str,
}

/// `stage` and `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct UnloadLabels {
    stage: &'static str,
    reason: &'static str,
}

/// The families of a multi-model endpoint.
pub(crate) struct MmeMetrics {
    loaded: Family<StageLabels, Gauge>,
    loads: Family<LoadLabels, Counter>,
    unloads: Family<UnloadLabels, Counter>,
    load_time: Histograms<StageLabels>,
}

impl MmeMetrics {
    /// Registers the families in `registry`.
    pub(super) fn register(registry: &mut Registry) -> MmeMetrics {
        let loaded = Family::<StageLabels, Gauge>::default();
        registry.register(
            "mme_models_loaded",
            "Models a multi-model endpoint has loaded in every worker",
            loaded.clone(),
        );
        let loads = Family::<LoadLabels, Counter>::default();
        registry.register(
            "mme_model_loads",
            "Model loads of a multi-model endpoint, by outcome (insufficient_storage: answered 507)",
            loads.clone(),
        );
        let unloads = Family::<UnloadLabels, Counter>::default();
        registry.register(
            "mme_model_unloads",
            "Loaded models a multi-model endpoint let go, by reason",
            unloads.clone(),
        );
        let load_time = Histograms::<StageLabels>::new_with_constructor(load_buckets as fn() -> Histogram);
        registry.register_with_unit(
            "mme_model_load_duration",
            "Time to load a model in every worker of a multi-model endpoint (unpacking included), for the loads that succeeded",
            Unit::Seconds,
            load_time.clone(),
        );
        MmeMetrics {
            loaded,
            loads,
            unloads,
            load_time,
        }
    }

    /// Creates every series at 0, so that a scraper sees the first increase.
    pub(super) fn start_at_zero(&self, stage: &StageLabels) {
        self.loaded.get_or_create(stage).set(0);
        for outcome in [
            LoadOutcome::Loaded,
            LoadOutcome::InsufficientStorage,
            LoadOutcome::Failed,
        ] {
            self.loads
                .get_or_create(&LoadLabels {
                    stage: stage.stage,
                    outcome: outcome.label(),
                })
                .inc_by(0);
        }
        for reason in [
            UnloadReason::Request,
            UnloadReason::Evicted,
            UnloadReason::ReloadFailed,
        ] {
            self.unloads
                .get_or_create(&UnloadLabels {
                    stage: stage.stage,
                    reason: reason.label(),
                })
                .inc_by(0);
        }
    }
}

/// The families and the stage's label, when the metrics are on at a
/// multi-model endpoint.
fn mme() -> Option<(&'static MmeMetrics, &'static str)> {
    let m = get()?;
    Some((m.mme.as_ref()?, m.stage()))
}

/// The number of models loaded now.
pub(crate) fn models_loaded(count: usize) {
    if let Some((mme, stage)) = mme() {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        mme.loaded.get_or_create(&StageLabels { stage }).set(count);
    }
}

/// A load succeeded after `took`.
pub(crate) fn model_loaded(took: Duration) {
    if let Some((mme, stage)) = mme() {
        let outcome = LoadOutcome::Loaded.label();
        mme.loads.get_or_create(&LoadLabels { stage, outcome }).inc();
        mme.load_time
            .get_or_create(&StageLabels { stage })
            .observe(took.as_secs_f64());
    }
}

/// A load did not happen, for `outcome`.
pub(crate) fn model_not_loaded(outcome: LoadOutcome) {
    if let Some((mme, stage)) = mme() {
        let outcome = outcome.label();
        mme.loads.get_or_create(&LoadLabels { stage, outcome }).inc();
    }
}

/// A loaded model left every worker, for `reason`.
pub(crate) fn model_unloaded(reason: UnloadReason) {
    if let Some((mme, stage)) = mme() {
        let reason = reason.label();
        mme.unloads.get_or_create(&UnloadLabels { stage, reason }).inc();
    }
}
