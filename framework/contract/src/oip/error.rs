//! The errors of the protocol's codec: one type, [`OipError`], for every
//! function of `oip`, whose variants a caller (the server, a stage) can match
//! on; [`InputProblem`], what is wrong with one input of a request; and
//! [`BinaryError`], binary tensor data that does not hold its elements, which
//! a request's input carries and [`decode_binary`](super::decode_binary)
//! returns on its own.
//!
//! Every message says what to fix; names are quoted and bounded when the
//! message is written, so the success path builds no text.

use super::datatype::Datatype;
use super::MAX_DIMS;
use crate::excerpt::quoted;

/// An error of the Open Inference Protocol codec. Its text is the message of
/// the protocol's error body (`{"error": "..."}`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OipError {
    /// The `Inference-Header-Content-Length` header claims more bytes than
    /// the body has.
    #[error(
        "the {} header says the JSON object is {claimed} bytes, but the body has only {body}",
        super::HEADER_LENGTH
    )]
    HeaderPastBody {
        /// The header's value.
        claimed: usize,
        /// The body's length.
        body: usize,
    },
    /// The request's JSON object does not parse.
    #[error("the inference request is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The request is JSON but not an inference request: the message names
    /// the field (`"id"`, `"inputs"`, `outputs[2]`...) and what it must be.
    #[error("{0}")]
    Malformed(String),
    /// An input tensor of the request is wrong.
    #[error("input {}{}{problem}", quoted(name.as_bytes()), problem.separator())]
    Input {
        /// The input's name, as sent.
        name: String,
        /// What is wrong with it.
        problem: InputProblem,
    },
    /// Binary data follows the JSON object that no input claims.
    #[error(
        "{bytes} bytes of binary data follow the JSON object that no input's \"binary_data_size\" claims"
    )]
    UnclaimedBinary {
        /// How many bytes are left over.
        bytes: usize,
    },
    /// The request asks for the same output twice.
    #[error("output {} is requested twice", quoted(name.as_bytes()))]
    OutputRequestedTwice {
        /// The output's name.
        name: String,
    },
    /// The request asks for an output the answer does not have.
    #[error(
        "the requested output {} is not one of this model's outputs ({})",
        quoted(name.as_bytes()),
        quoted_list(known)
    )]
    UnknownOutput {
        /// The name asked for.
        name: String,
        /// The outputs the answer has.
        known: Vec<String>,
    },
    /// A stage's answer is not tensors, or not of the datatypes the stage
    /// declares: the message names the output (or the record) and why.
    #[error("{0}")]
    Answer(String),
    /// An output holds an element the binary data extension cannot carry
    /// (over 4 GiB of BYTES).
    #[error("output {}: an element is over 4 GiB", quoted(output.as_bytes()))]
    ElementTooLarge {
        /// The output's name.
        output: String,
    },
    /// An output's element does not fit the output's datatype.
    #[error("output {}, element {element}: {problem}", quoted(output.as_bytes()))]
    ElementDoesNotFit {
        /// The output's name.
        output: String,
        /// The element's index, row-major.
        element: usize,
        /// Why it does not fit (`1e+300 is out of the range of FP32`).
        problem: String,
    },
    /// A tensor's shape calls for more elements than memory can index.
    #[error("output {}: shape {shape:?} has too many elements", quoted(name.as_bytes()))]
    TensorTooLarge {
        /// The tensor's name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A tensor's shape and element count disagree.
    #[error(
        "tensor {}: shape {shape:?} calls for {expected} elements but it has {found}",
        quoted(name.as_bytes())
    )]
    TensorCount {
        /// The tensor's name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The elements the shape calls for.
        expected: usize,
        /// The elements it has.
        found: usize,
    },
    /// A tensor's values are not of its datatype's kind.
    #[error("tensor {}: its values are not of datatype {datatype}", quoted(name.as_bytes()))]
    TensorKind {
        /// The tensor's name.
        name: String,
        /// Its datatype.
        datatype: Datatype,
    },
    /// A stage's declared tensor signature does not parse.
    #[error("the declared tensor signature is not valid: {0}")]
    InvalidSignature(#[source] serde_json::Error),
    /// A stage declares a tensor of a datatype the protocol does not have.
    #[error(
        "the declared tensor {} has the unknown datatype {}",
        quoted(tensor.as_bytes()),
        quoted(datatype.as_bytes())
    )]
    UnknownDeclaredDatatype {
        /// The tensor's name.
        tensor: String,
        /// The datatype it declares.
        datatype: String,
    },
}

/// What is wrong with one input tensor of a request (or of the records
/// made from the inputs).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputProblem {
    /// Two inputs have its name.
    #[error("is given twice")]
    GivenTwice,
    /// It has no `datatype`.
    #[error("needs a \"datatype\" (a string such as \"FP32\")")]
    NoDatatype,
    /// Its `datatype` is not one of the protocol's.
    #[error(
        "unknown datatype {}; the protocol's are {}",
        quoted(.0.as_bytes()),
        Datatype::ALL.map(Datatype::name).join(", ")
    )]
    UnknownDatatype(String),
    /// It has no `shape`.
    #[error("needs a \"shape\" (a list of sizes such as [1, 8])")]
    NoShape,
    /// Its shape has more dimensions than [`MAX_DIMS`].
    #[error("shape has {0} dimensions, more than {MAX_DIMS}")]
    TooManyDimensions(usize),
    /// Its shape is not a list of sizes of 0 or more (the shape as sent,
    /// bounded).
    #[error("shape {0} must list sizes of 0 or more")]
    BadShape(String),
    /// Its shape calls for more elements than memory can index.
    #[error("shape {0:?} has too many elements")]
    TooManyElements(Vec<usize>),
    /// Its `parameters` is not an object (the value as sent, bounded).
    #[error("\"parameters\": must be an object, got {0}")]
    ParametersNotObject(String),
    /// Its `parameters.binary_data_size` is not a whole number.
    #[error("\"binary_data_size\" must be a whole number of bytes")]
    BadBinaryDataSize,
    /// It has both `data` and `binary_data_size`.
    #[error("has both \"data\" and \"binary_data_size\"; send one of them")]
    DataAndBinary,
    /// Its `binary_data_size` is past the end of the body.
    #[error("\"binary_data_size\" is {size} bytes but only {left} bytes of binary data are left")]
    BinaryPastBody {
        /// The size it claims.
        size: usize,
        /// The bytes left in the body.
        left: usize,
    },
    /// Its binary data does not hold its elements.
    #[error("{0}")]
    Binary(#[from] BinaryError),
    /// It has neither `data` nor `binary_data_size`.
    #[error("has no \"data\"")]
    NoData,
    /// Its `data` holds another number of elements than its shape calls for.
    #[error("shape {shape:?} calls for {count} elements but \"data\" holds {found}")]
    CountMismatch {
        /// Its shape.
        shape: Vec<usize>,
        /// The elements the shape calls for.
        count: usize,
        /// The elements `data` holds.
        found: usize,
    },
    /// Its `data` is nested, but not as its shape.
    #[error(
        "\"data\" is nested as {nesting:?} but the shape is {shape:?}; nest it as the shape or send it flat"
    )]
    NestedAs {
        /// The lengths of the lists at each depth.
        nesting: Vec<usize>,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// Its `data` is nested deeper than [`MAX_DIMS`] lists.
    #[error("\"data\" is nested deeper than {MAX_DIMS} lists")]
    NestedTooDeep,
    /// Two lists of its `data` at one depth differ in length.
    #[error("\"data\" is ragged: a list at depth {depth} has {length} elements, another {other}")]
    RaggedLengths {
        /// The depth.
        depth: usize,
        /// This list's length.
        length: usize,
        /// The length of the lists before it.
        other: usize,
    },
    /// A list of its `data` sits beside values.
    #[error("\"data\" is ragged: a list at depth {depth} sits beside values")]
    RaggedList {
        /// The list's depth.
        depth: usize,
    },
    /// Values of its `data` sit at two depths.
    #[error("\"data\" is ragged: values sit at depths {depth} and {other}")]
    RaggedValues {
        /// The depth of the first values.
        depth: usize,
        /// The depth of these.
        other: usize,
    },
    /// An element of its `data` is not of its datatype's kind.
    #[error("element {index} is {value}, not {expected} ({datatype})")]
    WrongKind {
        /// The element's index, row-major.
        index: usize,
        /// The element as sent, bounded.
        value: String,
        /// What it should have been (`an integer`).
        expected: &'static str,
        /// The input's datatype.
        datatype: Datatype,
    },
    /// An element of its `data` is out of its datatype's range.
    #[error("element {index} is {why}")]
    OutOfRange {
        /// The element's index, row-major.
        index: usize,
        /// The value and the range it is out of.
        why: String,
    },
    /// It has another number of records (its first dimension) than the
    /// first input.
    #[error(
        "has {records} records (shape {shape:?}) but input {} has {rows}; inputs are columns of the same records",
        quoted(first.as_bytes())
    )]
    RecordsMismatch {
        /// Its records.
        records: usize,
        /// Its shape.
        shape: Vec<usize>,
        /// The first input's name.
        first: String,
        /// The first input's records.
        rows: usize,
    },
    /// A BYTES element that is not UTF-8 text, which a CSV record cannot
    /// carry.
    #[error("element {index}: {} is not UTF-8 text", quoted(bytes))]
    NotUtf8 {
        /// The element's index.
        index: usize,
        /// The element.
        bytes: Vec<u8>,
    },
}

impl InputProblem {
    /// What joins `input "name"` and the problem in a message: a predicate
    /// follows the name, a detail follows a colon.
    fn separator(&self) -> &'static str {
        match self {
            InputProblem::GivenTwice
            | InputProblem::NoDatatype
            | InputProblem::NoShape
            | InputProblem::DataAndBinary
            | InputProblem::NoData
            | InputProblem::RecordsMismatch { .. } => " ",
            InputProblem::NotUtf8 { .. } => ", ",
            _ => ": ",
        }
    }
}

/// Raw data of the binary tensor data extension that does not hold the
/// elements its datatype and shape call for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BinaryError {
    /// The shape's bytes overflow memory.
    #[error("the shape is too large")]
    ShapeTooLarge,
    /// The data's size is not the elements' size.
    #[error("\"binary_data_size\" is {size} bytes but {count} elements of {datatype} take {expected}")]
    SizeMismatch {
        /// The bytes given.
        size: usize,
        /// The elements the shape calls for.
        count: usize,
        /// Their datatype.
        datatype: Datatype,
        /// The bytes they take.
        expected: usize,
    },
    /// A BOOL byte other than 0 or 1.
    #[error("BOOL element {index} is the byte {byte}; it must be 0 or 1")]
    NotABool {
        /// The element's index.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// The data ends before a BYTES element's length.
    #[error("BYTES element {index}: the binary data ends before its 4-byte length")]
    NoLength {
        /// The element's index.
        index: usize,
    },
    /// A BYTES element's length runs past the data.
    #[error("BYTES element {index}: its length is {length} bytes but only {left} follow")]
    PastEnd {
        /// The element's index.
        index: usize,
        /// Its length.
        length: usize,
        /// The bytes that follow it.
        left: usize,
    },
    /// Bytes are left after the BYTES elements of the shape.
    #[error("{left} bytes are left after the {count} BYTES elements of the shape")]
    LeftOver {
        /// The bytes left.
        left: usize,
        /// The elements read.
        count: usize,
    },
}

/// Names quoted and joined, for a message.
fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quoted(n.as_bytes()))
        .collect::<Vec<_>>()
        .join(", ")
}
