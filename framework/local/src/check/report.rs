//! What `modelstage check` found: one [`Finding`] per check, each with its stable id, and the two
//! ways of showing them: a table for people ([`Report::table`]) and JSON for CI ([`Report::json`]).
//! Both carry the same ids, outcomes and evidence.

use serde_json::{json, Value};

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed; the text says what was seen (may be empty).
    Pass(String),
    /// Failed; the text is the evidence (statuses, bounded and escaped excerpts of bodies, logs).
    Fail(String),
    /// Not run; the text says why.
    Skip(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass(_) => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Skip(_) => "skip",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Verdict::Pass(t) | Verdict::Fail(t) | Verdict::Skip(t) => t,
        }
    }

    /// A pass when `ok`, else a failure, with the same words.
    pub fn from_bool(ok: bool, detail: String) -> Verdict {
        if ok {
            Verdict::Pass(detail)
        } else {
            Verdict::Fail(detail)
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id, e.g. `ping.after-load`; the same in the table and in JSON.
    pub id: &'static str,
    pub outcome: Verdict,
}

/// Every check's result, in the order they are listed in [`super::ids::ALL`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// What was checked, e.g. `image modelstage/echo:latest`.
    pub target: String,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(target: String) -> Report {
        Report {
            target,
            findings: Vec::new(),
        }
    }

    /// Records the outcome of check `id`; a later record of the same id replaces the earlier one.
    pub fn record(&mut self, id: &'static str, outcome: Verdict) {
        match self.findings.iter_mut().find(|f| f.id == id) {
            Some(found) => found.outcome = outcome,
            None => self.findings.push(Finding { id, outcome }),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Verdict> {
        self.findings.iter().find(|f| f.id == id).map(|f| &f.outcome)
    }

    pub fn failed(&self) -> usize {
        self.count("fail")
    }

    fn count(&self, label: &str) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome.label() == label)
            .count()
    }

    /// One line per check: id, outcome, detail (continuation lines indented under the detail),
    /// then a summary line.
    pub fn table(&self) -> String {
        let width = self.findings.iter().map(|f| f.id.len()).max().unwrap_or(0);
        let mut out = format!("modelstage check: {}\n\n", self.target);
        out.push_str(&format!("{:width$}  result  detail\n", "check", width = width));
        for f in &self.findings {
            let mut lines = f.outcome.detail().lines();
            let first = lines.next().unwrap_or("");
            out.push_str(&format!(
                "{:width$}  {:6}  {first}\n",
                f.id,
                f.outcome.label(),
                width = width
            ));
            for line in lines {
                out.push_str(&format!("{:width$}          {line}\n", "", width = width));
            }
        }
        out.push_str(&format!(
            "\n{} passed, {} failed, {} skipped\n",
            self.count("pass"),
            self.failed(),
            self.count("skip")
        ));
        out
    }

    /// `{"target": …, "passed": bool, "summary": {…}, "checks": [{"id", "outcome", "detail"}]}`.
    pub fn json(&self) -> Value {
        let checks: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "id": f.id,
                    "outcome": f.outcome.label(),
                    "detail": f.outcome.detail(),
                })
            })
            .collect();
        json!({
            "target": self.target,
            "passed": self.failed() == 0,
            "summary": {
                "pass": self.count("pass"),
                "fail": self.failed(),
                "skip": self.count("skip"),
            },
            "checks": checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::new("stage library libx.so".into());
        r.record("ping.after-load", Verdict::Pass("200 after 0.1 s".into()));
        r.record(
            "invocations.accept-406",
            Verdict::Fail("got 200\nbody: \"a\"".into()),
        );
        r.record("signals.sigterm", Verdict::Skip("a URL".into()));
        r
    }

    #[test]
    fn the_table_and_the_json_carry_the_same_ids_and_outcomes() {
        let r = sample();
        let table = r.table();
        assert!(
            table.contains("invocations.accept-406  fail    got 200\n"),
            "{table}"
        );
        // The evidence's second line stays under the detail column.
        let indent = " ".repeat("invocations.accept-406".len() + 10);
        assert!(table.contains(&format!("\n{indent}body: \"a\"\n")), "{table}");
        assert!(table.ends_with("1 passed, 1 failed, 1 skipped\n"), "{table}");
        let json = r.json();
        assert_eq!(json["passed"], false);
        assert_eq!(json["checks"][1]["id"], "invocations.accept-406");
        assert_eq!(json["checks"][1]["outcome"], "fail");
        assert_eq!(json["summary"]["skip"], 1);
    }

    #[test]
    fn a_later_record_replaces_an_earlier_one() {
        let mut r = sample();
        r.record("signals.sigterm", Verdict::Pass("exited 0".into()));
        assert_eq!(r.findings.len(), 3);
        assert_eq!(r.get("signals.sigterm"), Some(&Verdict::Pass("exited 0".into())));
        assert_eq!(r.failed(), 1);
    }
}
