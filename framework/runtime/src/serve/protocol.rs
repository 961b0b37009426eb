//! The frames the server and its worker processes exchange over a Unix
//! socket. Each frame is `u64 length (LE) | u8 kind | fields`, every field a
//! `u64 length | bytes` string or a fixed-size integer. Small and explicit:
//! both ends are this crate, built together. Lengths are 64-bit so that no
//! body, however large the payload limit, can wrap them; a length read from
//! a frame is never trusted with an allocation larger than [`READ_CHUNK`]
//! before the bytes it announces have arrived.

use std::io::{self, Read};

use bytes::Bytes;

use crate::loader::RequestMeta;

/// A worker's first frame on its control connection.
pub(super) const HELLO: u8 = 1;
pub(super) const READY: u8 = 2;
pub(super) const LOAD_FAILED: u8 = 3;
pub(super) const REQUEST: u8 = 4;
pub(super) const REPLY: u8 = 5;
pub(super) const ERROR: u8 = 6;
/// A worker opening one of its data connections (its lanes).
pub(super) const LANE: u8 = 7;
/// A request thread of the worker is about to run a request (`u64 id`): from here on, a
/// crash of the process costs that request. A request that crashes with
/// its worker before this frame arrived is handed to another worker.
pub(super) const STARTED: u8 = 8;
/// A worker's description of the stages it opened (JSON, see
/// [`StageDescription`]): sent once the libraries are loaded, before
/// `model_fn`. The server configures itself from the first one, so the
/// server process never loads a stage library itself.
pub(super) const DESCRIBED: u8 = 9;
/// Multi-model endpoints (`serve/mme`), on the control connection. From the
/// server: load a model (`u64 op | name | model dir`), unload one
/// (`u64 op | name`). From the worker: the outcome of an operation
/// (`u64 op`, and the message of a failed load).
pub(super) const LOAD_MODEL: u8 = 10;
pub(super) const UNLOAD_MODEL: u8 = 11;
pub(super) const MODEL_LOADED: u8 = 12;
pub(super) const MODEL_LOAD_FAILED: u8 = 13;
pub(super) const MODEL_UNLOADED: u8 = 14;

/// The size of a frame's length prefix.
pub(super) const PREFIX: usize = 8;

/// The most a reader reserves ahead of the bytes a frame length announces:
/// a corrupt or hostile length costs an error, not a huge allocation.
pub(super) const READ_CHUNK: usize = 8 * 1024 * 1024;

/// A request as it travels to a worker: its metadata in the form the
/// loader hands to the hooks, as the edge resolved it.
#[derive(Debug, Clone, Default)]
pub struct WireRequest {
    pub id: u64,
    pub meta: RequestMeta,
    /// The model of a multi-model endpoint the request is for.
    pub model: Option<String>,
    pub body: Bytes,
}

/// What a worker answers.
#[derive(Debug, Clone)]
pub enum WireAnswer {
    Reply {
        id: u64,
        /// Nanoseconds the worker spent in the stage's hooks (0 until the
        /// worker sets it), for the metrics.
        hook_nanos: u64,
        content_type: String,
        custom_attributes: Option<String>,
        body: Bytes,
    },
    Error {
        id: u64,
        hook_nanos: u64,
        http_status: u16,
        /// The pipeline container that failed, in a fused pipeline.
        container: Option<String>,
        stage: String,
        hook: String,
        message: String,
        record: Option<u64>,
    },
}

/// What a worker read from one stage library's descriptor: everything the
/// server configures itself from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct StageDescription {
    pub name: String,
    pub version: String,
    /// Whether one model may be called from several threads at once.
    pub per_instance: bool,
    /// 0 when not declared.
    pub max_concurrent_transforms: u32,
    /// `MULTI_RECORD`, `SINGLE_RECORD`, or `None` when not declared.
    pub batch_strategy: Option<String>,
    /// 0 when not declared.
    pub max_payload_in_mb: u32,
    /// The optional hooks the library exports.
    pub hooks: Vec<String>,
    /// The tensors the stage declares for the Open Inference Protocol (JSON,
    /// `modelstage_signature_json`), `None` when it declares none.
    #[serde(default)]
    pub signature: Option<String>,
}

impl StageDescription {
    /// The description of an opened library.
    pub(super) fn of(stage: &crate::loader::LoadedStage) -> StageDescription {
        let info = stage.info();
        StageDescription {
            name: info.name.clone(),
            version: info.version.clone(),
            per_instance: info.threading == crate::loader::Threading::PerInstance,
            max_concurrent_transforms: info.max_concurrent_transforms,
            batch_strategy: info.batch_strategy.map(str::to_string),
            max_payload_in_mb: info.max_payload_in_mb,
            hooks: stage
                .hook_names()
                .into_iter()
                .filter(|&(_, present)| present)
                .map(|(hook, _)| hook.to_string())
                .collect(),
            signature: info.signature_json.clone(),
        }
    }

    /// The request threads of a worker running `stages`: one when any of
    /// them must not be called from two threads at once, else `shared`.
    pub(super) fn threads(stages: &[StageDescription], shared: usize) -> usize {
        if stages.iter().any(|s| s.per_instance) {
            1
        } else {
            shared.max(1)
        }
    }

    /// The frame that carries `stages`.
    pub(super) fn frame(stages: &[StageDescription]) -> Vec<u8> {
        let json = serde_json::to_vec(stages).expect("descriptions serialize");
        FrameWriter::new(DESCRIBED, json.len()).bytes(&json).finish()
    }
}

/// Any frame a worker sends.
#[derive(Debug)]
pub(super) enum FromWorker {
    Hello,
    Lane,
    Described(Vec<StageDescription>),
    Ready,
    Started { id: u64 },
    LoadFailed { message: String },
    Answer(WireAnswer),
}

/// Builds one frame; `finish` patches in the length.
pub(super) struct FrameWriter {
    buf: Vec<u8>,
    /// Where this frame starts in `buf` (frames can be appended to a batch).
    start: usize,
    /// Bytes of the frame written after it, not in `buf` (see `external`).
    external: usize,
}

impl FrameWriter {
    pub(super) fn new(kind: u8, capacity: usize) -> Self {
        Self::onto(Vec::with_capacity(capacity + PREFIX + 1), kind)
    }

    /// A frame appended to `buf`, which may already hold other frames.
    pub(super) fn onto(mut buf: Vec<u8>, kind: u8) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&[0; PREFIX]);
        buf.push(kind);
        FrameWriter {
            buf,
            start,
            external: 0,
        }
    }

    pub(super) fn u64(mut self, v: u64) -> Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(super) fn u16(mut self, v: u16) -> Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(super) fn bytes(mut self, v: &[u8]) -> Self {
        self.buf.extend_from_slice(&wire_len(v.len()).to_le_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    /// The length of a last field whose `len` bytes the caller writes right
    /// after the frame, instead of copying them into it.
    pub(super) fn external(mut self, len: usize) -> Self {
        self.buf.extend_from_slice(&wire_len(len).to_le_bytes());
        self.external = len;
        self
    }

    pub(super) fn opt(self, v: Option<&str>) -> Self {
        match v {
            // u64::MAX marks "absent", which an empty string is not.
            None => self.u64(ABSENT),
            Some(s) => self.bytes(s.as_bytes()),
        }
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        let len = wire_len(self.buf.len() - self.start - PREFIX + self.external);
        self.buf[self.start..self.start + PREFIX].copy_from_slice(&len.to_le_bytes());
        self.buf
    }
}

/// The length marking an absent optional string.
const ABSENT: u64 = u64::MAX;

/// A length as it goes on the wire. `usize` is at most 64 bits on every
/// target this crate builds for, so the conversion cannot lose bits.
fn wire_len(len: usize) -> u64 {
    u64::try_from(len).expect("usize fits in u64")
}

/// A length read from the wire, as a `usize`; an error where it cannot be one.
fn local_len(len: u64) -> io::Result<usize> {
    usize::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len} does not fit this machine's address space"),
        )
    })
}

/// Reads the fields of one frame.
pub(super) struct FrameReader<'a> {
    data: &'a [u8],
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "truncated frame")
}

impl<'a> FrameReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        FrameReader { data }
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(truncated());
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    pub(super) fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| truncated())?,
        ))
    }

    pub(super) fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().map_err(|_| truncated())?,
        ))
    }

    pub(super) fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = local_len(self.u64()?)?;
        self.take(n)
    }

    pub(super) fn string(&mut self) -> io::Result<String> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    pub(super) fn opt(&mut self) -> io::Result<Option<String>> {
        let n = self.u64()?;
        if n == ABSENT {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(self.take(local_len(n)?)?).into_owned(),
        ))
    }
}

/// Reads one frame: its kind and payload. `Ok(None)` at a clean end of stream.
pub(super) fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<u8>> {
    let mut len = [0u8; PREFIX];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let wire = u64::from_le_bytes(len);
    let len = local_len(wire)?;
    if len == 0 {
        return Err(truncated());
    }
    buf.clear();
    // Room for the frame, but never more than a chunk ahead of what has
    // arrived: `read_to_end` grows the buffer as the bytes come. It fills
    // the spare capacity without zeroing it first, which for large bodies
    // is a pass over the memory saved.
    buf.reserve(len.min(READ_CHUNK));
    if r.take(wire).read_to_end(buf)? < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "frame cut short"));
    }
    Ok(Some(buf[0]))
}

/// Takes the first whole frame (length prefix included) off the front of
/// `buf`, if it holds one. `Err` for a zero length, which no frame has.
pub(super) fn split_frame(buf: &mut bytes::BytesMut) -> io::Result<Option<bytes::BytesMut>> {
    let Some(total) = frame_size(buf)? else {
        return Ok(None);
    };
    Ok((buf.len() >= total).then(|| buf.split_to(total)))
}

/// The size of the frame at the front of `buf` (length prefix included), once
/// its prefix has arrived.
pub(super) fn frame_size(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(prefix) = buf.get(..PREFIX) else {
        return Ok(None);
    };
    let len = local_len(u64::from_le_bytes(prefix.try_into().map_err(|_| truncated())?))?;
    if len == 0 {
        return Err(truncated());
    }
    len.checked_add(PREFIX).map(Some).ok_or_else(truncated)
}

impl WireRequest {
    /// Appends this request's frame to `buf`.
    pub fn encode_onto(&self, buf: Vec<u8>) -> Vec<u8> {
        FrameWriter::onto(buf, REQUEST)
            .u64(self.id)
            .bytes(self.meta.request_id.as_bytes())
            .bytes(self.meta.content_type.as_bytes())
            .bytes(self.meta.accept.as_bytes())
            .opt(self.meta.custom_attributes.as_deref())
            .opt(self.meta.target_model.as_deref())
            .opt(self.model.as_deref())
            .bytes(&self.body)
            .finish()
    }

    /// Decodes a request frame's payload; the body shares its memory.
    pub fn decode(payload: &Bytes) -> io::Result<WireRequest> {
        let mut r = FrameReader::new(payload);
        Ok(WireRequest {
            id: r.u64()?,
            meta: RequestMeta {
                request_id: r.string()?,
                content_type: r.string()?,
                accept: r.string()?,
                custom_attributes: r.opt()?,
                target_model: r.opt()?,
            },
            model: r.opt()?,
            body: payload.slice_ref(r.bytes()?),
        })
    }
}

/// Reply bodies at least this large are written after their frame rather
/// than copied into it.
pub(super) const LARGE_BODY: usize = 64 * 1024;

impl WireAnswer {
    /// Records the time the hooks took.
    pub fn set_hook_time(&mut self, took: std::time::Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        match self {
            WireAnswer::Reply { hook_nanos, .. } | WireAnswer::Error { hook_nanos, .. } => {
                *hook_nanos = nanos
            }
        }
    }

    /// The time the hooks took, as the worker measured it.
    pub fn hook_time(&self) -> std::time::Duration {
        match self {
            WireAnswer::Reply { hook_nanos, .. } | WireAnswer::Error { hook_nanos, .. } => {
                std::time::Duration::from_nanos(*hook_nanos)
            }
        }
    }

    /// Appends this answer's frame to `buf`, all but a large reply body,
    /// which it returns: the frame is whole once that follows it.
    pub fn encode_split(&self, buf: Vec<u8>) -> (Vec<u8>, Option<&Bytes>) {
        match self {
            WireAnswer::Reply {
                id,
                hook_nanos,
                content_type,
                custom_attributes,
                body,
            } => {
                let head = FrameWriter::onto(buf, REPLY)
                    .u64(*id)
                    .u64(*hook_nanos)
                    .bytes(content_type.as_bytes())
                    .opt(custom_attributes.as_deref());
                if body.len() >= LARGE_BODY {
                    (head.external(body.len()).finish(), Some(body))
                } else {
                    (head.bytes(body).finish(), None)
                }
            }
            WireAnswer::Error {
                id,
                hook_nanos,
                http_status,
                container,
                stage,
                hook,
                message,
                record,
            } => {
                let frame = FrameWriter::onto(buf, ERROR)
                    .u64(*id)
                    .u64(*hook_nanos)
                    .u16(*http_status)
                    .opt(container.as_deref())
                    .bytes(stage.as_bytes())
                    .bytes(hook.as_bytes())
                    .bytes(message.as_bytes())
                    .u64(record.map(|r| r.saturating_add(1)).unwrap_or(0))
                    .finish();
                (frame, None)
            }
        }
    }

    /// Appends this answer's whole frame to `buf`.
    #[cfg(test)]
    pub fn encode_onto(&self, buf: Vec<u8>) -> Vec<u8> {
        let (mut frame, large_body) = self.encode_split(buf);
        if let Some(body) = large_body {
            frame.extend_from_slice(body);
        }
        frame
    }
}

/// Decodes a frame a worker sent (`kind` and payload from `read_frame`); a
/// reply's body shares the payload's memory.
pub(super) fn decode_from_worker(kind: u8, payload: &Bytes) -> io::Result<FromWorker> {
    let mut r = FrameReader::new(payload);
    Ok(match kind {
        HELLO => FromWorker::Hello,
        LANE => FromWorker::Lane,
        READY => FromWorker::Ready,
        DESCRIBED => FromWorker::Described(
            serde_json::from_slice(r.bytes()?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        ),
        STARTED => FromWorker::Started { id: r.u64()? },
        LOAD_FAILED => FromWorker::LoadFailed { message: r.string()? },
        // Fields are read in the order they are written (a struct
        // expression evaluates its fields in source order).
        REPLY => FromWorker::Answer(WireAnswer::Reply {
            id: r.u64()?,
            hook_nanos: r.u64()?,
            content_type: r.string()?,
            custom_attributes: r.opt()?,
            body: payload.slice_ref(r.bytes()?),
        }),
        ERROR => FromWorker::Answer(WireAnswer::Error {
            id: r.u64()?,
            hook_nanos: r.u64()?,
            http_status: r.u16()?,
            container: r.opt()?,
            stage: r.string()?,
            hook: r.string()?,
            message: r.string()?,
            record: match r.u64()? {
                0 => None,
                n => Some(n - 1),
            },
        }),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown frame kind {other}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(frame: Vec<u8>) -> (u8, Bytes) {
        let mut buf = Vec::new();
        let kind = read_frame(&mut frame.as_slice(), &mut buf).unwrap().unwrap();
        (kind, Bytes::from(buf).slice(1..))
    }

    #[test]
    fn request_survives_the_wire() {
        let req = WireRequest {
            id: 42,
            meta: RequestMeta {
                request_id: "r-1".into(),
                content_type: "text/csv; charset=utf-8".into(),
                accept: "application/json".into(),
                custom_attributes: Some(String::new()),
                target_model: Some("b.tar.gz".into()),
            },
            model: Some("a.tar.gz".into()),
            body: Bytes::from_static(b"1,2\n3,4\n"),
        };
        let (kind, payload) = roundtrip(req.encode_onto(Vec::new()));
        assert_eq!(kind, REQUEST);
        let back = WireRequest::decode(&payload).unwrap();
        assert_eq!(back.id, 42);
        assert_eq!(back.meta.request_id, "r-1");
        assert_eq!(back.meta.content_type, "text/csv; charset=utf-8");
        assert_eq!(back.meta.custom_attributes.as_deref(), Some(""));
        assert_eq!(back.meta.target_model.as_deref(), Some("b.tar.gz"));
        assert_eq!(back.model.as_deref(), Some("a.tar.gz"));
        assert_eq!(&back.body[..], b"1,2\n3,4\n");
    }

    #[test]
    fn error_keeps_record_zero_apart_from_none() {
        for record in [None, Some(0), Some(7)] {
            let e = WireAnswer::Error {
                id: 1,
                hook_nanos: 1234,
                http_status: 400,
                container: Some("container-2".into()),
                stage: "s".into(),
                hook: "input_fn".into(),
                message: "bad".into(),
                record,
            };
            let (kind, payload) = roundtrip(e.encode_onto(Vec::new()));
            match decode_from_worker(kind, &payload).unwrap() {
                FromWorker::Answer(WireAnswer::Error {
                    record: r,
                    http_status,
                    hook_nanos,
                    ..
                }) => {
                    assert_eq!(r, record);
                    assert_eq!(http_status, 400);
                    assert_eq!(hook_nanos, 1234);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_large_reply_body_follows_its_frame_head() {
        let reply = |len: usize| WireAnswer::Reply {
            id: 9,
            hook_nanos: 5,
            content_type: "text/csv".into(),
            custom_attributes: None,
            body: Bytes::from(vec![b'x'; len]),
        };
        let small = reply(LARGE_BODY - 1);
        let (frame, body) = small.encode_split(b"earlier".to_vec());
        assert!(body.is_none());
        assert_eq!(&frame[..7], b"earlier");
        let large = reply(LARGE_BODY);
        let (mut frame, body) = large.encode_split(Vec::new());
        frame.extend_from_slice(body.expect("a large body is left out"));
        assert_eq!(frame, large.encode_onto(Vec::new()));
        let (kind, payload) = roundtrip(frame);
        match decode_from_worker(kind, &payload).unwrap() {
            FromWorker::Answer(WireAnswer::Reply {
                id, hook_nanos, body, ..
            }) => {
                assert_eq!((id, hook_nanos, body.len()), (9, 5, LARGE_BODY));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn frames_split_off_a_batch_one_at_a_time() {
        let first = WireRequest {
            id: 1,
            body: Bytes::from_static(b"a"),
            ..Default::default()
        };
        let second = WireRequest {
            id: 2,
            body: Bytes::from_static(b"bb"),
            ..Default::default()
        };
        let batch = second.encode_onto(first.encode_onto(Vec::new()));
        // The second frame arrives in two pieces.
        let cut = batch.len() - 3;
        let mut buf = bytes::BytesMut::from(&batch[..cut]);
        let one = split_frame(&mut buf).unwrap().unwrap();
        assert_eq!(
            WireRequest::decode(&one.freeze().slice(PREFIX + 1..)).unwrap().id,
            1
        );
        assert!(split_frame(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&batch[cut..]);
        let two = split_frame(&mut buf).unwrap().unwrap();
        let two = WireRequest::decode(&two.freeze().slice(PREFIX + 1..)).unwrap();
        assert_eq!((two.id, &two.body[..]), (2, &b"bb"[..]));
        assert!(buf.is_empty());
        assert!(split_frame(&mut bytes::BytesMut::from(&[0u8; PREFIX][..])).is_err());
    }

    #[test]
    fn a_description_survives_the_wire() {
        let stages = vec![StageDescription {
            name: "s".into(),
            version: "1.0".into(),
            per_instance: true,
            max_concurrent_transforms: 2,
            batch_strategy: Some("SINGLE_RECORD".into()),
            max_payload_in_mb: 0,
            hooks: vec!["model_fn".into(), "transform_fn".into()],
            signature: Some(r#"{"inputs":[],"outputs":[]}"#.into()),
        }];
        let (kind, payload) = roundtrip(StageDescription::frame(&stages));
        match decode_from_worker(kind, &payload).unwrap() {
            FromWorker::Described(back) => assert_eq!(back, stages),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(StageDescription::threads(&stages, 4), 1);
    }

    #[test]
    fn truncated_frame_is_an_error_not_a_panic() {
        let frame = WireRequest::default().encode_onto(Vec::new());
        let mut cut = frame[..frame.len() - 3].to_vec();
        let len = (cut.len() - PREFIX) as u64;
        cut[..PREFIX].copy_from_slice(&len.to_le_bytes());
        let (kind, payload) = roundtrip(cut);
        assert_eq!(kind, REQUEST);
        assert!(WireRequest::decode(&payload).is_err());
    }

    #[test]
    fn a_length_past_four_gib_does_not_wrap() {
        let body = 5usize << 30;
        let frame = FrameWriter::onto(Vec::new(), REPLY)
            .u64(1)
            .external(body)
            .finish();
        let len = u64::from_le_bytes(frame[..PREFIX].try_into().unwrap());
        assert_eq!(len, (frame.len() - PREFIX + body) as u64);
        assert_eq!(frame_size(&frame).unwrap(), Some(frame.len() + body));
    }

    #[test]
    fn a_huge_announced_length_is_not_allocated_up_front() {
        let mut frame = (1u64 << 40).to_le_bytes().to_vec();
        frame.extend_from_slice(&[REQUEST, 1, 2, 3]);
        let mut buf = Vec::new();
        let err = read_frame(&mut frame.as_slice(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(buf.capacity() <= 2 * READ_CHUNK, "{}", buf.capacity());
    }
}
