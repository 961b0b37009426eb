//! Why a transform job, or one of its input files, failed: the one error type of the transform
//! module, from reading the request document to committing an output file. Its message is the
//! job's failure reason (the terminal's `error: …` line, the API's `FailureReason`, a file's
//! failure in the report), so each variant says what failed and what to fix.

use std::io;
use std::path::PathBuf;

use super::job::{SplitType, DATA_PROCESSING_TYPES};
use crate::request_doc::MemberErrors;

/// Why a transform job could not run, or why one input file produced no output.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The request document cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    ReadRequest {
        /// The document.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The request document is not JSON.
    #[error("{origin} is not valid JSON: {error}")]
    RequestNotJson {
        /// The document's name.
        origin: String,
        /// Where and why.
        error: serde_json::Error,
    },
    /// The request document has keys CreateTransformJob does not know, or lacks required ones.
    #[error(transparent)]
    Members(#[from] MemberErrors),
    /// A value of the request document has the wrong type or spelling.
    #[error("{origin}: invalid CreateTransformJob request: {error}")]
    RequestValue {
        /// The document's name.
        origin: String,
        /// Where and why.
        error: serde_json::Error,
    },
    /// The request asks for what CreateTransformJob refuses.
    #[error(transparent)]
    Invalid(#[from] InvalidJob),
    /// A flag's value is not one the request document allows (`--split-type Lines`).
    #[error("{flag} {value}: {error}")]
    Flag {
        /// The flag (`--split-type`).
        flag: &'static str,
        /// Its value.
        value: String,
        /// Why it was refused.
        error: serde_json::Error,
    },
    /// An `--env` flag without `=`.
    #[error("--env '{0}' must look like NAME=VALUE")]
    EnvFlag(String),
    /// The model was not given.
    #[error("give the model: --endpoint URL (a running endpoint) or --model MODEL.json")]
    NoModel,
    /// The signal handlers cannot be installed.
    #[error("{0:#}")]
    Signals(anyhow::Error),
    /// The model of `--model` did not start.
    #[error("cannot start the model {}: {error:#}", model.display())]
    StartModel {
        /// The CreateModel request document.
        model: PathBuf,
        /// Why, with its causes.
        error: anyhow::Error,
    },
    /// The HTTP client cannot be built.
    #[error("cannot create the HTTP client: {0}")]
    HttpClient(reqwest::Error),
    /// The endpoint did not answer `GET /ping` with 200 in time.
    #[error("the endpoint {endpoint} is not ready: GET /ping failed: {last}")]
    NotReady {
        /// Its base URL.
        endpoint: String,
        /// What the last attempt got (`it answered HTTP 503`, `cannot connect (…)`).
        last: String,
    },
    /// An input or output location is on S3 or the web.
    #[error(
        "{field} is '{uri}': local transform reads local files only; copy the data down \
         (aws s3 sync) and pass its folder"
    )]
    Remote {
        /// The request's field (`S3Uri`).
        field: &'static str,
        /// Its value.
        uri: String,
    },
    /// `S3DataType` is `AugmentedManifestFile`.
    #[error("S3DataType AugmentedManifestFile is not supported by local transform")]
    AugmentedManifest,
    /// The input location is neither a file, a folder nor a name prefix of one.
    #[error("the input {} does not exist", .0.display())]
    InputMissing(PathBuf),
    /// The input location holds no file.
    #[error("no input files found at {}", .0.display())]
    NoInputs(PathBuf),
    /// A folder of the input cannot be listed.
    #[error("cannot list {}: {error}", dir.display())]
    ListInputs {
        /// The folder.
        dir: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// An input file cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    ReadInput {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// An input file cannot be opened (the report names the file).
    #[error("cannot open: {0}")]
    OpenInput(io::Error),
    /// The manifest cannot be read.
    #[error("cannot read manifest {}: {error}", path.display())]
    ReadManifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The manifest is not a JSON list.
    #[error("manifest {} is not a JSON list: {error}", path.display())]
    ManifestNotJson {
        /// The manifest.
        path: PathBuf,
        /// Where and why.
        error: serde_json::Error,
    },
    /// The manifest does not start with its prefix.
    #[error("manifest {} must start with {{\"prefix\": \"…\"}}", .0.display())]
    ManifestPrefix(PathBuf),
    /// A manifest entry is not a string.
    #[error("manifest {} entry {index} is not a string", path.display())]
    ManifestEntryType {
        /// The manifest.
        path: PathBuf,
        /// The entry's index in the list.
        index: usize,
    },
    /// A manifest entry would leave the prefix.
    #[error("manifest {} entry '{key}' must be relative to the prefix", path.display())]
    ManifestEntryOutside {
        /// The manifest.
        path: PathBuf,
        /// The entry.
        key: String,
    },
    /// An output file, or its folder, cannot be created.
    #[error("cannot create {}: {error}", path.display())]
    CreateOutput {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// An output file cannot be written.
    #[error("cannot write {}: {error}", path.display())]
    WriteOutput {
        /// The file (its temporary name).
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A written output file cannot be published under its final name.
    #[error("cannot rename to {}: {error}", path.display())]
    RenameOutput {
        /// The final name.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// Writing to an output file that was committed or discarded.
    #[error("the output file is already closed")]
    OutputAlreadyClosed,
    /// An answer for a file whose output was dropped.
    #[error("the output file is closed")]
    OutputClosed,
    /// An `InputFilter` or `OutputFilter` that is not a JSONPath the service accepts.
    #[error("Invalid JsonPath: {path}: {problem}")]
    JsonPath {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// DataProcessing on a content type it cannot read.
    #[error("DataProcessing does not support ContentType '{0}'")]
    UnsupportedContentType(String),
    /// A record is not in the job's content type.
    #[error("{0}")]
    Record(Unparsable),
    /// A filter does not match a record or an output.
    #[error("{filter} {error}")]
    Filter {
        /// `InputFilter` or `OutputFilter`.
        filter: &'static str,
        /// What did not match.
        error: NoMatch,
    },
    /// A filter selected what a CSV row cannot hold.
    #[error("the filter selected a JSON object, which cannot be written as a CSV row")]
    ObjectAsCsv,
    /// A CSV row cannot be written.
    #[error("{0}")]
    WriteCsv(csv::Error),
    /// The answer to one record is not in the Accept type.
    #[error("the response is {0}")]
    Response(Unparsable),
    /// One output of an answer to several records is not in the Accept type.
    #[error("output {number} of the response is {error}")]
    ResponseOutput {
        /// Its place in the answer, from 1.
        number: usize,
        /// Why.
        error: Unparsable,
    },
    /// An answer does not hold one output per record, as a join or an OutputFilter needs.
    #[error(
        "the response holds {outputs} outputs (lines) for {records} records; JoinSource and \
         OutputFilter need exactly one output per record, in order"
    )]
    OutputCount {
        /// The outputs found.
        outputs: usize,
        /// The records sent.
        records: usize,
    },
    /// A joined record was not kept (a bug, not bad input).
    #[error("internal error: the original record is missing")]
    MissingOriginal,
}

/// A check CreateTransformJob makes before it accepts a job; each message names the field.
#[derive(Debug, thiserror::Error)]
pub enum InvalidJob {
    /// A required field is empty.
    #[error("{field} is required (or {flag})")]
    Required {
        /// The request's field.
        field: &'static str,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// `MaxPayloadInMB` over 100.
    #[error("MaxPayloadInMB must be between 0 and 100, got {0}")]
    MaxPayload(u32),
    /// `MaxConcurrentTransforms × MaxPayloadInMB` over 100.
    #[error("MaxConcurrentTransforms × MaxPayloadInMB must not exceed 100 MB, got {concurrent} × {mb}")]
    TotalPayload {
        /// MaxConcurrentTransforms.
        concurrent: u32,
        /// MaxPayloadInMB.
        mb: u32,
    },
    /// `InvocationsTimeoutInSeconds` out of range.
    #[error("ModelClientConfig.InvocationsTimeoutInSeconds must be 1 to 3600, got {0}")]
    Timeout(u32),
    /// `InvocationsMaxRetries` out of range.
    #[error("ModelClientConfig.InvocationsMaxRetries must be 0 to 3, got {0}")]
    Retries(u32),
    /// More than 16 `Environment` entries.
    #[error("Environment holds {0} entries; at most 16 are allowed")]
    TooManyVariables(usize),
    /// An `Environment` key that is not a variable name.
    #[error("Environment key '{0}' is not a valid name (letters, digits and _, not starting with a digit)")]
    VariableName(String),
    /// An `Environment` value that is too long.
    #[error("Environment value of '{0}' is longer than 10240 characters")]
    VariableValue(String),
    /// A filter longer than the API allows.
    #[error("DataProcessing.{filter} is longer than 63 characters: {path}")]
    FilterLength {
        /// `InputFilter` or `OutputFilter`.
        filter: &'static str,
        /// The path.
        path: String,
    },
    /// DataProcessing on an input type it cannot read.
    #[error(
        "DataProcessing needs TransformInput.ContentType to be one of {types}, got '{0}'",
        types = DATA_PROCESSING_TYPES.join(", ")
    )]
    FilterContentType(String),
    /// A join or an OutputFilter on an output type it cannot read.
    #[error(
        "JoinSource and OutputFilter need TransformOutput.Accept to be one of {types}, got '{0}'",
        types = DATA_PROCESSING_TYPES.join(", ")
    )]
    FilterAccept(String),
    /// DataProcessing on CSV that is not split by line.
    #[error("DataProcessing with text/csv input needs SplitType Line")]
    CsvSplit,
    /// A join between different types.
    #[error(
        "JoinSource=Input needs ContentType and Accept to be the same, got '{content_type}' and '{accept}'"
    )]
    JoinTypes {
        /// The input's media type.
        content_type: String,
        /// The output's media type.
        accept: String,
    },
    /// A join whose split and assembly do not match.
    #[error(
        "JoinSource=Input needs SplitType and AssembleWith to match (Line/Line or None/None), got \
         {split}/{assemble}"
    )]
    JoinSplit {
        /// SplitType.
        split: SplitType,
        /// AssembleWith (`Line` or `None`).
        assemble: &'static str,
    },
}

/// What is wrong with a JSONPath's text.
#[derive(Debug, thiserror::Error)]
pub enum PathProblem {
    /// It does not start with `$`.
    #[error("a path must start with $")]
    NoRoot,
    /// `.` followed by nothing.
    #[error("empty name after '.'")]
    EmptyName,
    /// `[` without its `]`.
    #[error("missing ']'")]
    MissingBracket,
    /// Text that is no part of the subset.
    #[error("unexpected text '{0}'")]
    Unexpected(String),
    /// `['a','b']` before another part.
    #[error("a bracket with several names must be the last part of the path")]
    NamesNotLast,
    /// A name in brackets without quotes.
    #[error("'{0}' is not a quoted name")]
    NotQuoted(String),
    /// A slice with other selectors, which the service refuses.
    #[error("only single range filters of format (eg: [1:5]) are supported. Format [{0}] is not supported")]
    SliceUnion(String),
    /// An index that is not an integer.
    #[error("'{0}' is not an index")]
    NotAnIndex(String),
}

/// A path that can select one node only found none.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct NoMatch {
    /// The path as written.
    pub path: String,
    /// Why nothing matched.
    pub problem: SelectProblem,
}

/// Why a path selected nothing.
#[derive(Debug, thiserror::Error)]
pub enum SelectProblem {
    /// An object lacks the name.
    #[error("no attribute '{0}'")]
    NoAttribute(String),
    /// An index or slice applied to what is not an array.
    #[error("not an array")]
    NotAnArray,
    /// An index past either end.
    #[error("index {index} is out of range for {len} elements")]
    OutOfRange {
        /// The index as written.
        index: i64,
        /// The array's length.
        len: usize,
    },
}

/// A record or an answer that is not in its content type.
#[derive(Debug, thiserror::Error)]
pub enum Unparsable {
    /// Not a CSV row.
    #[error("not a valid CSV row: {0}")]
    Csv(csv::Error),
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages are the job's failure reasons: people and scripts read them, so they stay
    /// word for word.
    #[test]
    fn messages_read_as_the_failure_reasons_do() {
        let cases: [(TransformError, &str); 7] = [
            (
                TransformError::Remote {
                    field: "S3Uri",
                    uri: "s3://b/k".into(),
                },
                "S3Uri is 's3://b/k': local transform reads local files only; copy the data down \
                 (aws s3 sync) and pass its folder",
            ),
            (
                TransformError::ManifestPrefix(PathBuf::from("m.json")),
                "manifest m.json must start with {\"prefix\": \"…\"}",
            ),
            (
                InvalidJob::FilterAccept("text/plain".into()).into(),
                "JoinSource and OutputFilter need TransformOutput.Accept to be one of text/csv, \
                 application/json, application/jsonlines, got 'text/plain'",
            ),
            (
                InvalidJob::JoinSplit {
                    split: SplitType::RecordIO,
                    assemble: "None",
                }
                .into(),
                "JoinSource=Input needs SplitType and AssembleWith to match (Line/Line or None/None), \
                 got RecordIO/None",
            ),
            (
                TransformError::JsonPath {
                    path: "$[0:2,3]".into(),
                    problem: PathProblem::SliceUnion("0:2,3".into()),
                },
                "Invalid JsonPath: $[0:2,3]: only single range filters of format (eg: [1:5]) are \
                 supported. Format [0:2,3] is not supported",
            ),
            (
                TransformError::Filter {
                    filter: "OutputFilter",
                    error: NoMatch {
                        path: "$[5]".into(),
                        problem: SelectProblem::OutOfRange { index: 5, len: 2 },
                    },
                },
                "OutputFilter $[5]: index 5 is out of range for 2 elements",
            ),
            (
                TransformError::ResponseOutput {
                    number: 2,
                    error: Unparsable::Json(serde_json::from_str::<serde_json::Value>("{").unwrap_err()),
                },
                "output 2 of the response is not valid JSON: EOF while parsing an object at line 1 \
                 column 1",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }
}
