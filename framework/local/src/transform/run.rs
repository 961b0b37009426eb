//! Drives a transform job over all its input files.
//!
//! One thread reads, splits and batches the files in order and writes the
//! outputs; `MaxConcurrentTransforms` worker threads send the mini-batches.
//! Every mini-batch gets a sequence number across the whole job, and answers
//! are written strictly in that order, so each output keeps its input's
//! record order while requests for the next file already run. At most
//! `MaxConcurrentTransforms + 1` mini-batches are outstanding (sent, or
//! answered and waiting for an earlier one), which bounds memory by a few
//! payloads whatever the input size.
//!
//! A failing mini-batch fails its file only: the file's partial output is
//! dropped, its remaining records are skipped, and the other files go on,
//! as the service does (docs/contract.md (Batch transform)).
//!
//! Every output is all or nothing: it is written under a temporary name and
//! renamed when its file is done ([`super::assemble`]). Ctrl-C or SIGTERM
//! stops the job between mini-batches: answers still in flight are awaited
//! no further, the unfinished files' temporary outputs are removed, finished
//! files keep theirs, and the report names the signal. A job that was
//! killed outright leaves its temporary files; the next job that writes the
//! same outputs removes them before it starts, so a rerun keeps nothing
//! half-written.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;

use super::assemble::{append_response, remove_stale_partials, OutputFile};
use super::batch::{payload_limit, Batch, Batcher, Item};
use super::client::{ExecutionParameters, InvocationError, Invoker, Reply};
use super::dataprocessing::DataProcessor;
use super::error::TransformError;
use super::inputs::{list_inputs, local_path, output_path, InputFile};
use super::job::{
    AssembleWith, BatchStrategy, CompressionType, TransformJob, DEFAULT_BATCH_STRATEGY,
    DEFAULT_MAX_CONCURRENT_TRANSFORMS, DEFAULT_MAX_PAYLOAD_IN_MB,
};
use super::progress::Progress;
use super::split::{describe_span, records, Locator, SplitError};
use crate::fit::Stop;

/// How often a driver waiting for an answer looks whether the job was stopped.
const STOP_POLL: Duration = Duration::from_millis(100);

/// The values a job runs with after the platform's precedence: the request,
/// then `/execution-parameters`, then the defaults (docs/contract.md (Batch transform)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub batch_strategy: BatchStrategy,
    pub max_payload_in_mb: u32,
    pub max_concurrent_transforms: u32,
}

pub fn resolve_settings(job: &TransformJob, offered: Option<ExecutionParameters>) -> Settings {
    let offered = offered.unwrap_or_default();
    Settings {
        batch_strategy: job
            .batch_strategy
            .or(offered.batch_strategy)
            .unwrap_or(DEFAULT_BATCH_STRATEGY),
        max_payload_in_mb: job
            .max_payload_in_mb
            .or(offered.max_payload_in_mb)
            .unwrap_or(DEFAULT_MAX_PAYLOAD_IN_MB),
        // 0 means "ask the container", like unset.
        max_concurrent_transforms: job
            .max_concurrent_transforms
            .filter(|&n| n > 0)
            .or(offered.max_concurrent_transforms.filter(|&n| n > 0))
            .unwrap_or(DEFAULT_MAX_CONCURRENT_TRANSFORMS),
    }
}

/// One input file that produced no output, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFailure {
    pub file: PathBuf,
    pub message: String,
}

/// What a job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub settings: Settings,
    pub files: usize,
    pub input_bytes: u64,
    pub succeeded: usize,
    pub records: u64,
    pub failures: Vec<FileFailure>,
    pub elapsed: Duration,
    /// The signal that stopped the job before every file was done.
    pub stopped_by: Option<i32>,
}

/// Runs `job` against `invoker` until it is done or `stop` is requested.
/// `Err` is a job that could not start (bad request, no inputs); file
/// failures are in the report.
pub fn run_job(
    job: &TransformJob,
    invoker: &dyn Invoker,
    progress: &mut Progress,
    stop: &Stop,
) -> Result<JobReport, TransformError> {
    job.validate()?;
    let output_dir = local_path(&job.transform_output.s3_output_path, "S3OutputPath")?;
    let inputs = list_inputs(job, &output_dir)?;
    let stale: usize = inputs
        .iter()
        .map(|input| remove_stale_partials(&output_path(&output_dir, input)))
        .sum();
    if stale > 0 {
        log::info!("removed {stale} partial output(s) an interrupted job left");
    }
    let processor = DataProcessor::from_job(job)?;
    let needs_container_values = job.batch_strategy.is_none()
        || job.max_payload_in_mb.is_none()
        || job.max_concurrent_transforms.unwrap_or(0) == 0;
    let offered = if needs_container_values {
        invoker.execution_parameters()
    } else {
        None
    };
    let settings = resolve_settings(job, offered);
    progress.set_total(inputs.iter().map(|f| f.size).sum());
    let started = Instant::now();

    let (work_tx, work_rx) = mpsc::channel::<Work>();
    let (done_tx, done_rx) = mpsc::channel::<(u64, Result<Reply, InvocationError>)>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let content_type = job.transform_input.content_type.clone().unwrap_or_default();
    let accept = job.transform_output.accept.clone();

    let report = std::thread::scope(|scope| {
        for _ in 0..settings.max_concurrent_transforms {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            let (content_type, accept) = (content_type.as_str(), accept.as_deref());
            scope.spawn(move || worker(invoker, &work_rx, &done_tx, content_type, accept));
        }
        drop(done_tx);
        let mut driver = Driver {
            job,
            settings,
            processor: processor.as_ref(),
            inputs: &inputs,
            output_dir: &output_dir,
            files: Vec::new(),
            next_seq: 0,
            next_write: 0,
            window: u64::from(settings.max_concurrent_transforms) + 1,
            ready: BTreeMap::new(),
            meta: HashMap::new(),
            work_tx: Some(work_tx),
            done_rx,
            progress,
            stop,
            position: Arc::new(AtomicU64::new(0)),
            finished_bytes: 0,
            failures: Vec::new(),
            succeeded: 0,
            records: 0,
        };
        driver.run();
        JobReport {
            settings,
            files: inputs.len(),
            input_bytes: inputs.iter().map(|f| f.size).sum(),
            succeeded: driver.succeeded,
            records: driver.records,
            failures: driver.failures,
            elapsed: started.elapsed(),
            stopped_by: stop.signal(),
        }
    });
    Ok(report)
}

struct Work {
    seq: u64,
    body: Vec<u8>,
}

fn worker(
    invoker: &dyn Invoker,
    work: &Mutex<Receiver<Work>>,
    done: &Sender<(u64, Result<Reply, InvocationError>)>,
    content_type: &str,
    accept: Option<&str>,
) {
    loop {
        // The lock is held only while taking the next item, not while invoking.
        let next = match work.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(Work { seq, body }) = next else { return };
        let result = invoker.invoke(body, content_type, accept);
        if done.send((seq, result)).is_err() {
            return;
        }
    }
}

/// What happened to one sequence number.
enum BatchResult {
    Answered(Result<Reply, InvocationError>),
    /// Reading, splitting or filtering failed at this point of the file.
    Broken(String),
}

/// A mini-batch's bookkeeping while its body is away.
struct Meta {
    file: usize,
    first: Locator,
    last: Locator,
    count: usize,
    originals: Vec<Vec<u8>>,
}

struct FileState {
    output: Option<OutputFile>,
    /// One past the file's last sequence number, once all of it is sent.
    end_seq: Option<u64>,
    failure: Option<String>,
    finished: bool,
}

struct Driver<'a> {
    job: &'a TransformJob,
    settings: Settings,
    processor: Option<&'a DataProcessor>,
    inputs: &'a [InputFile],
    output_dir: &'a Path,
    files: Vec<FileState>,
    next_seq: u64,
    next_write: u64,
    window: u64,
    ready: BTreeMap<u64, BatchResult>,
    meta: HashMap<u64, Meta>,
    work_tx: Option<Sender<Work>>,
    done_rx: Receiver<(u64, Result<Reply, InvocationError>)>,
    progress: &'a mut Progress,
    stop: &'a Stop,
    position: Arc<AtomicU64>,
    finished_bytes: u64,
    failures: Vec<FileFailure>,
    succeeded: usize,
    records: u64,
}

impl Driver<'_> {
    fn run(&mut self) {
        for index in 0..self.inputs.len() {
            if self.stop.requested() {
                break;
            }
            self.produce_file(index);
            // Answers still in flight count as read: the file is all read.
            self.finished_bytes += self.inputs[index].size;
            self.position.store(0, Ordering::Relaxed);
        }
        while self.next_write < self.next_seq {
            if !self.receive_one() {
                break;
            }
        }
        if self.stop.requested() {
            // Dropping an unfinished output removes its temporary file.
            for state in &mut self.files {
                state.output = None;
            }
        }
        // Closing the queue lets the workers end.
        self.work_tx = None;
        self.progress.finish();
    }

    fn produce_file(&mut self, index: usize) {
        let input = &self.inputs[index];
        let (output, failure) = match OutputFile::create(&output_path(self.output_dir, input)) {
            Ok(output) => (Some(output), None),
            Err(error) => (None, Some(error.to_string())),
        };
        self.files.push(FileState {
            output,
            end_seq: None,
            failure: None,
            finished: false,
        });
        if let Some(message) = failure {
            self.push_broken(index, message);
        } else {
            match self.open(input) {
                Err(error) => self.push_broken(index, error.to_string()),
                Ok(reader) => self.send_batches(index, reader),
            }
        }
        if self.stop.requested() {
            // Stopped while this file was read: it may hold only some of its records (or none),
            // so it never gets an end and is never committed; its temporary output goes when the
            // job stops.
            return;
        }
        self.files[index].end_seq = Some(self.next_seq);
        self.finish_if_done(index);
    }

    fn open(&self, input: &InputFile) -> Result<Box<dyn BufRead + Send>, TransformError> {
        let file = File::open(&input.path).map_err(TransformError::OpenInput)?;
        let counted = Counting {
            inner: file,
            count: Arc::clone(&self.position),
        };
        Ok(match self.job.compression() {
            CompressionType::None => Box::new(BufReader::with_capacity(1 << 20, counted)),
            CompressionType::Gzip => Box::new(BufReader::with_capacity(
                1 << 20,
                MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted)),
            )),
        })
    }

    fn send_batches(&mut self, index: usize, reader: Box<dyn BufRead + Send>) {
        let limit = payload_limit(self.settings.max_payload_in_mb);
        let processor = self.processor;
        // With an InputFilter a raw record may shrink below the limit, so the
        // reader's guard (which only bounds memory) is looser.
        let guard = match processor {
            Some(p) if p.filters_input() => limit.map(|l| l.saturating_mul(4)),
            _ => limit,
        };
        let keep_originals = processor.is_some_and(|p| p.keeps_originals());
        let items = records(reader, self.job.split_type(), guard).map(move |record| {
            let record = record?;
            let payload = match processor {
                Some(p) if p.filters_input() => p.filter_input(&record.data).map_err(|error| SplitError {
                    locator: record.locator,
                    message: format!("InputFilter: {error}"),
                })?,
                _ if keep_originals => record.data.clone(),
                _ => {
                    return Ok(Item {
                        payload: record.data,
                        locator: record.locator,
                        original: None,
                    })
                }
            };
            let original = keep_originals.then_some(record.data);
            Ok(Item {
                payload,
                locator: record.locator,
                original,
            })
        });
        for batch in Batcher::new(
            items,
            self.settings.batch_strategy,
            self.settings.max_payload_in_mb,
        ) {
            if self.files[index].failure.is_some() || self.stop.requested() {
                break;
            }
            match batch {
                Ok(batch) => self.submit(index, batch),
                Err(error) => {
                    self.push_broken(index, error.to_string());
                    break;
                }
            }
        }
    }

    fn submit(&mut self, file: usize, batch: Batch) {
        while self.next_seq - self.next_write >= self.window {
            if !self.receive_one() {
                return;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let Batch {
            body,
            first,
            last,
            count,
            originals,
        } = batch;
        self.meta.insert(
            seq,
            Meta {
                file,
                first,
                last,
                count,
                originals,
            },
        );
        let sent = self
            .work_tx
            .as_ref()
            .is_some_and(|tx| tx.send(Work { seq, body }).is_ok());
        if !sent {
            self.ready.insert(
                seq,
                BatchResult::Broken("internal error: no worker is running".into()),
            );
            self.flush_ready();
        }
    }

    fn push_broken(&mut self, file: usize, message: String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let at = Locator::WholeFile;
        self.meta.insert(
            seq,
            Meta {
                file,
                first: at,
                last: at,
                count: 0,
                originals: Vec::new(),
            },
        );
        self.ready.insert(seq, BatchResult::Broken(message));
        self.flush_ready();
    }

    /// Waits for one answer; `false` if the workers are gone or the job was
    /// stopped.
    fn receive_one(&mut self) -> bool {
        loop {
            if self.stop.requested() {
                return false;
            }
            match self.done_rx.recv_timeout(STOP_POLL) {
                Ok((seq, result)) => {
                    self.ready.insert(seq, BatchResult::Answered(result));
                    self.flush_ready();
                    return true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Writes every answer that is next in order.
    fn flush_ready(&mut self) {
        while let Some(outcome) = self.ready.remove(&self.next_write) {
            let meta = self.meta.remove(&self.next_write);
            self.next_write += 1;
            if let Some(meta) = meta {
                self.apply(&meta, outcome);
                self.finish_if_done(meta.file);
            }
        }
    }

    fn apply(&mut self, meta: &Meta, outcome: BatchResult) {
        if self.files[meta.file].failure.is_some() {
            return;
        }
        let span = describe_span(meta.first, meta.last);
        let result = match outcome {
            BatchResult::Broken(message) => Err(message),
            BatchResult::Answered(Err(error)) => Err(format!("{span}: {error}")),
            BatchResult::Answered(Ok(reply)) => {
                self.write_reply(meta, &reply).map_err(|e| format!("{span}: {e}"))
            }
        };
        match result {
            Ok(()) => {
                self.records += meta.count as u64;
                let position = self.finished_bytes + self.position.load(Ordering::Relaxed);
                self.progress.update(position, meta.count as u64);
            }
            Err(message) => {
                let state = &mut self.files[meta.file];
                state.failure = Some(message);
                if let Some(output) = state.output.take() {
                    output.discard();
                }
            }
        }
    }

    fn write_reply(&mut self, meta: &Meta, reply: &Reply) -> Result<(), TransformError> {
        let assemble = self.job.assemble_with();
        let mut out = Vec::with_capacity(reply.body.len() + meta.count);
        match self.processor {
            Some(p) => p.assemble(
                &meta.originals,
                meta.count,
                &reply.body,
                assemble == AssembleWith::Line,
                &mut out,
            )?,
            None => append_response(&mut out, &reply.body, assemble),
        }
        let output = self.files[meta.file]
            .output
            .as_mut()
            .ok_or(TransformError::OutputClosed)?;
        output.write(&out)
    }

    fn finish_if_done(&mut self, index: usize) {
        let state = &mut self.files[index];
        let done = state.end_seq.is_some_and(|end| self.next_write >= end);
        if !done || state.finished {
            return;
        }
        state.finished = true;
        let committed = match (state.failure.take(), state.output.take()) {
            (Some(message), output) => {
                if let Some(output) = output {
                    output.discard();
                }
                Err(message)
            }
            (None, Some(output)) => output.commit().map_err(|error| error.to_string()),
            (None, None) => Err("internal error: the output file is missing".into()),
        };
        match committed {
            Ok(()) => self.succeeded += 1,
            Err(message) => self.failures.push(FileFailure {
                file: self.inputs[index].relative.clone(),
                message,
            }),
        }
    }
}

/// Counts the bytes read from disk, for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
