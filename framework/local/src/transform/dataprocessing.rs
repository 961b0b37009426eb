//! DataProcessing (docs/contract.md (Batch transform)): `InputFilter` selects what each record
//! sends to the model, `JoinSource=Input` joins each original record with
//! its inference, `OutputFilter` selects what of that is stored. Works on
//! `text/csv` (a row is a JSON array of its fields, RFC 4180 quoting),
//! `application/json` and `application/jsonlines`.
//!
//! With a join or an OutputFilter the response must be split back into one
//! output per record: by lines (CSV, JSON Lines, and JSON answered one value
//! per line) or, for `application/json`, as an array with one element per
//! record. A count that does not match fails, naming the records.

use super::error::{TransformError, Unparsable};
use super::job::{media_type, JoinSource, TransformJob};
use super::json::Json;
use super::jsonpath::JsonPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    JsonLines,
}

impl Format {
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        match media_type(content_type).as_str() {
            "text/csv" => Some(Format::Csv),
            "application/json" => Some(Format::Json),
            "application/jsonlines" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// The job's DataProcessing, compiled.
#[derive(Debug, Clone)]
pub struct DataProcessor {
    input_format: Format,
    output_format: Format,
    input_filter: Option<JsonPath>,
    join: bool,
    output_filter: Option<JsonPath>,
}

impl DataProcessor {
    /// `Ok(None)` when the job uses the defaults (`$`, no join, `$`), so
    /// records and responses pass through untouched.
    pub fn from_job(job: &TransformJob) -> Result<Option<DataProcessor>, TransformError> {
        let input_filter = Some(JsonPath::parse(job.input_filter())?).filter(|p| !p.is_root());
        let output_filter = Some(JsonPath::parse(job.output_filter())?).filter(|p| !p.is_root());
        let join = job.join_source() == JoinSource::Input;
        if input_filter.is_none() && output_filter.is_none() && !join {
            return Ok(None);
        }
        let content_type = job.transform_input.content_type.as_deref().unwrap_or("");
        let accept = job.transform_output.accept.as_deref().unwrap_or(content_type);
        let input_format = Format::from_content_type(content_type)
            .ok_or_else(|| TransformError::UnsupportedContentType(content_type.to_string()))?;
        let output_format = Format::from_content_type(accept).unwrap_or(input_format);
        Ok(Some(DataProcessor {
            input_format,
            output_format,
            input_filter,
            join,
            output_filter,
        }))
    }

    /// Whether batches must keep their original records (for the join).
    pub fn keeps_originals(&self) -> bool {
        self.join
    }

    pub fn filters_input(&self) -> bool {
        self.input_filter.is_some()
    }

    /// The request bytes for one record after InputFilter, keeping its line
    /// ending.
    pub fn filter_input(&self, record: &[u8]) -> Result<Vec<u8>, TransformError> {
        let Some(filter) = &self.input_filter else {
            return Ok(record.to_vec());
        };
        let (content, ending) = split_ending(record);
        let document = parse_value(content, self.input_format).map_err(TransformError::Record)?;
        let selected = filter.select(&document).map_err(|error| TransformError::Filter {
            filter: "InputFilter",
            error,
        })?;
        let mut out = serialize(&selected, self.input_format)?;
        out.extend_from_slice(ending);
        Ok(out)
    }

    /// The stored bytes for one response to `originals.len()` records (or
    /// `count` records when no originals are kept), each record's output
    /// followed by a newline when `line` (AssembleWith=Line).
    pub fn assemble(
        &self,
        originals: &[Vec<u8>],
        count: usize,
        response: &[u8],
        line: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), TransformError> {
        let outputs = split_response(response, count, self.output_format)?;
        for (i, output) in outputs.into_iter().enumerate() {
            let mut value = output;
            if self.join {
                let original = originals.get(i).ok_or(TransformError::MissingOriginal)?;
                let (content, _) = split_ending(original);
                let input = parse_value(content, self.input_format).map_err(TransformError::Record)?;
                value = join(input, value);
            }
            if let Some(filter) = &self.output_filter {
                value = filter.select(&value).map_err(|error| TransformError::Filter {
                    filter: "OutputFilter",
                    error,
                })?;
            }
            out.extend_from_slice(&serialize(&value, self.output_format)?);
            if line {
                out.push(b'\n');
            }
        }
        Ok(())
    }
}

/// Joins an inference with its input record (docs/contract.md (Batch transform)).
fn join(input: Json, output: Json) -> Json {
    match (input, output) {
        (Json::Array(mut fields), Json::Array(more)) => {
            fields.extend(more);
            Json::Array(fields)
        }
        (Json::Object(mut entries), output) => {
            Json::insert(&mut entries, "SageMakerOutput", output);
            Json::Object(entries)
        }
        (input, output) => Json::Object(vec![
            ("SageMakerInput".into(), input),
            ("SageMakerOutput".into(), output),
        ]),
    }
}

fn split_ending(record: &[u8]) -> (&[u8], &[u8]) {
    let content_end = record
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    record.split_at(content_end)
}

/// A CSV line as an array of strings, or a JSON value.
fn parse_value(content: &[u8], format: Format) -> Result<Json, Unparsable> {
    match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(content);
            let mut row = csv::StringRecord::new();
            let found = reader.read_record(&mut row).map_err(Unparsable::Csv)?;
            if !found {
                return Ok(Json::Array(vec![Json::String(String::new())]));
            }
            Ok(Json::Array(
                row.iter().map(|f| Json::String(f.to_string())).collect(),
            ))
        }
        Format::Json | Format::JsonLines => Json::parse(content).map_err(Unparsable::Json),
    }
}

fn serialize(value: &Json, format: Format) -> Result<Vec<u8>, TransformError> {
    match format {
        Format::Json | Format::JsonLines => Ok(value.to_vec()),
        Format::Csv => {
            let fields: Vec<String> = match value {
                Json::Array(items) => items.iter().map(csv_field).collect(),
                Json::Object(_) => return Err(TransformError::ObjectAsCsv),
                scalar => vec![csv_field(scalar)],
            };
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            writer.write_record(&fields).map_err(TransformError::WriteCsv)?;
            let mut bytes = writer
                .into_inner()
                .map_err(|e| TransformError::WriteCsv(e.into_error().into()))?;
            bytes.pop();
            Ok(bytes)
        }
    }
}

fn csv_field(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => String::from_utf8_lossy(&other.to_vec()).into_owned(),
    }
}

/// Splits one response into `count` per-record outputs.
fn split_response(response: &[u8], count: usize, format: Format) -> Result<Vec<Json>, TransformError> {
    let (content, _) = split_ending(response);
    if count == 1 && format == Format::Json {
        return Ok(vec![
            parse_value(content, format).map_err(TransformError::Response)?
        ]);
    }
    let lines: Vec<&[u8]> = if content.is_empty() && count == 0 {
        Vec::new()
    } else {
        content
            .split(|&b| b == b'\n')
            .map(|l| split_ending(l).0)
            .collect()
    };
    if lines.len() == count {
        return lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                parse_value(line, format)
                    .map_err(|error| TransformError::ResponseOutput { number: i + 1, error })
            })
            .collect();
    }
    if format == Format::Json {
        if let Ok(Json::Array(items)) = Json::parse(content) {
            if items.len() == count {
                return Ok(items);
            }
        }
    }
    Err(TransformError::OutputCount {
        outputs: lines.len(),
        records: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(input_filter: &str, join: bool, output_filter: &str, content_type: &str) -> DataProcessor {
        let json = format!(
            r#"{{"TransformInput": {{"DataSource": {{"S3DataSource": {{"S3Uri": "in"}}}},
                 "ContentType": "{content_type}", "SplitType": "Line"}},
                "TransformOutput": {{"S3OutputPath": "out", "Accept": "{content_type}", "AssembleWith": "Line"}},
                "DataProcessing": {{"InputFilter": "{input_filter}", "OutputFilter": "{output_filter}",
                  "JoinSource": "{}"}}}}"#,
            if join { "Input" } else { "None" }
        );
        let job = TransformJob::from_request(&json, "job.json").unwrap();
        job.validate().unwrap();
        DataProcessor::from_job(&job).unwrap().unwrap()
    }

    fn assemble(p: &DataProcessor, originals: &[&str], response: &str) -> String {
        let originals: Vec<Vec<u8>> = originals.iter().map(|s| s.as_bytes().to_vec()).collect();
        let mut out = Vec::new();
        p.assemble(&originals, originals.len(), response.as_bytes(), true, &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn defaults_need_no_processor() {
        let job = TransformJob::from_request(
            r#"{"TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": "in"}}},
                "TransformOutput": {"S3OutputPath": "out"}, "DataProcessing": {"InputFilter": "$"}}"#,
            "job.json",
        )
        .unwrap();
        assert!(DataProcessor::from_job(&job).unwrap().is_none());
    }

    #[test]
    fn csv_input_filter_drops_the_id_column() {
        let p = processor("$[1:]", false, "$", "text/csv");
        assert_eq!(
            p.filter_input(b"id7,0.5,\"a,b\"\r\n").unwrap(),
            b"0.5,\"a,b\"\r\n"
        );
        assert_eq!(p.filter_input(b"id8,1").unwrap(), b"1");
    }

    #[test]
    fn csv_join_appends_output_columns_then_filters() {
        // Input rows keep their ID; the model saw only the features.
        let p = processor("$[1:]", true, "$", "text/csv");
        assert_eq!(
            assemble(&p, &["a,1,2\n", "b,3,4\n"], "0.5\n0.7\n"),
            "a,1,2,0.5\nb,3,4,0.7\n"
        );
        let p = processor("$[1:]", true, "$[0,-1]", "text/csv");
        assert_eq!(
            assemble(&p, &["a,1,2\n", "b,3,4\n"], "0.5\n0.7"),
            "a,0.5\nb,0.7\n"
        );
    }

    #[test]
    fn jsonlines_join_adds_sagemaker_output() {
        let p = processor(
            "$.features",
            true,
            "$['id','SageMakerOutput']",
            "application/jsonlines",
        );
        assert_eq!(
            p.filter_input(b"{\"id\":1,\"features\":[1,2]}\n").unwrap(),
            b"[1,2]\n"
        );
        let got = assemble(
            &p,
            &["{\"id\":1,\"features\":[1,2]}\n", "{\"id\":2,\"features\":[3]}"],
            "{\"s\":9}\n{\"s\":8}\n",
        );
        assert_eq!(
            got,
            "{\"id\":1,\"SageMakerOutput\":{\"s\":9}}\n{\"id\":2,\"SageMakerOutput\":{\"s\":8}}\n"
        );
    }

    #[test]
    fn a_non_object_input_is_wrapped() {
        let p = processor("$", true, "$", "application/jsonlines");
        assert_eq!(
            assemble(&p, &["[1,2]\n"], "3\n"),
            "{\"SageMakerInput\":[1,2],\"SageMakerOutput\":3}\n"
        );
    }

    #[test]
    fn a_json_array_response_splits_per_record() {
        let p = processor("$", true, "$", "application/json");
        let got = assemble(&p, &["{\"a\":1}\n", "{\"a\":2}\n"], "[10, 20]");
        assert_eq!(
            got,
            "{\"a\":1,\"SageMakerOutput\":10}\n{\"a\":2,\"SageMakerOutput\":20}\n"
        );
    }

    #[test]
    fn an_output_count_mismatch_fails() {
        let p = processor("$", true, "$", "text/csv");
        let mut out = Vec::new();
        let originals = vec![b"1\n".to_vec(), b"2\n".to_vec()];
        let err = p
            .assemble(&originals, 2, b"9\n", true, &mut out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 outputs (lines) for 2 records"), "{err}");
    }

    #[test]
    fn csv_output_filter_alone_filters_the_output() {
        let p = processor("$", false, "$[0]", "text/csv");
        let mut out = Vec::new();
        p.assemble(&[], 1, b"x,y\n", true, &mut out).unwrap();
        assert_eq!(out, b"x\n");
    }
}
