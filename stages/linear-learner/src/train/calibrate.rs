//! Threshold calibration of a binary classifier: the score threshold that
//! maximises `binary_classifier_model_selection_criteria` on a sample of
//! (score, label) pairs, usually from the validation channel.

use crate::train::config::Criterion;

/// The best threshold for `criterion` and the criterion's value there
/// (`None` when no threshold meets a target, e.g. no threshold reaches the
/// target recall). `predicted_label` is 1 when `score > threshold`.
/// `Criterion::Loss` keeps `default`.
pub fn best_threshold(samples: &mut [(f64, bool)], criterion: Criterion, default: f64) -> (f64, Option<f64>) {
    if samples.is_empty() || criterion == Criterion::Loss {
        return (default, None);
    }
    // Highest score first: cutting after the first i samples labels those positive.
    samples.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = samples.len();
    let positives = samples.iter().filter(|s| s.1).count() as f64;
    let negatives = n as f64 - positives;
    let mut best: Option<f64> = None;
    // Every threshold reaching the best value so far, highest first.
    let mut best_thresholds: Vec<f64> = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    for i in 0..=n {
        if i > 0 {
            if samples[i - 1].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
        }
        // Only cut between distinct scores: equal scores get the same label.
        if i > 0 && i < n && samples[i].0 == samples[i - 1].0 {
            continue;
        }
        let threshold = match i {
            0 => samples[0].0,
            _ if i == n => samples[n - 1].0 - 1.0,
            _ => 0.5 * (samples[i - 1].0 + samples[i].0),
        };
        let fn_ = positives - tp;
        let tn = negatives - fp;
        let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let recall = if positives > 0.0 { tp / positives } else { 0.0 };
        let value = match criterion {
            Criterion::Accuracy => Some((tp + tn) / n as f64),
            Criterion::FBeta { beta } => {
                let b2 = beta * beta;
                let denom = (1.0 + b2) * tp + b2 * fn_ + fp;
                Some(if denom > 0.0 { (1.0 + b2) * tp / denom } else { 0.0 })
            }
            Criterion::PrecisionAtTargetRecall { target } => (recall >= target).then_some(precision),
            Criterion::RecallAtTargetPrecision { target } => {
                (precision >= target && tp > 0.0).then_some(recall)
            }
            Criterion::Loss => None,
        };
        if let Some(v) = value {
            if best.is_none_or(|bv| v > bv) {
                best = Some(v);
                best_thresholds.clear();
            }
            if best == Some(v) {
                best_thresholds.push(threshold);
            }
        }
    }
    // Among thresholds that tie, the middle one: the value is flat there, and
    // the middle is the least sensitive to the sample.
    match best {
        Some(v) => (best_thresholds[(best_thresholds.len() - 1) / 2], Some(v)),
        None => (default, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<(f64, bool)> {
        // scores 0.9 0.8 0.7 0.6 0.4 0.3 0.2 0.1 with labels 1 1 0 1 0 0 1 0
        [
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.4, false),
            (0.3, false),
            (0.2, true),
            (0.1, false),
        ]
        .to_vec()
    }

    #[test]
    fn accuracy_cut_by_hand() {
        // Cuts: after 2 → 6/8 correct (tp2 tn4), after 4 → tp3 fp1 tn3 = 6/8; the
        // middle of the two (lower median) is the cut after 2, at 0.75.
        let (t, v) = best_threshold(&mut samples(), Criterion::Accuracy, 0.5);
        assert_eq!(v, Some(0.75));
        assert!((t - 0.75).abs() < 1e-12, "{t}");
        // Three tying cuts: the middle one.
        let mut s = vec![(0.9, true), (0.7, false), (0.5, true), (0.3, false)];
        // cut 0: 2/4, cut 1: 3/4 (t 0.8), cut 2: 2/4, cut 3: 3/4 (t 0.4), cut 4: 2/4
        let (t, _) = best_threshold(&mut s, Criterion::Accuracy, 0.5);
        assert!((t - 0.8).abs() < 1e-12, "{t}");
    }

    #[test]
    fn f1_and_targets_by_hand() {
        // F1 after 4: tp3 fp1 fn1 → 6/8 = 0.75; after 2: tp2 fn2 → 4/6; after 7: tp4 fp3 → 8/11.
        let (t, v) = best_threshold(&mut samples(), Criterion::FBeta { beta: 1.0 }, 0.5);
        assert_eq!(v, Some(0.75));
        assert!((t - 0.5).abs() < 1e-12);
        // Recall ≥ 0.8 needs all 4 positives: first at cut 7 (precision 4/7).
        let (t, v) = best_threshold(
            &mut samples(),
            Criterion::PrecisionAtTargetRecall { target: 0.8 },
            0.5,
        );
        assert_eq!(v, Some(4.0 / 7.0));
        assert!((t - 0.15).abs() < 1e-12);
        // Precision ≥ 0.8: cuts 1 and 2 (precision 1), best recall 2/4 at cut 2.
        let (_, v) = best_threshold(
            &mut samples(),
            Criterion::RecallAtTargetPrecision { target: 0.8 },
            0.5,
        );
        assert_eq!(v, Some(0.5));
    }

    #[test]
    fn ties_get_one_label_and_loss_keeps_the_default() {
        let mut s = vec![(0.5, true), (0.5, false), (0.5, true)];
        let (t, v) = best_threshold(&mut s, Criterion::Accuracy, 0.5);
        // either all negative (1/3) or all positive (2/3)
        assert_eq!(v, Some(2.0 / 3.0));
        assert!(t < 0.5);
        assert_eq!(best_threshold(&mut s, Criterion::Loss, 0.5), (0.5, None));
    }
}
