//! `modelstage invoke`: a client for any endpoint that speaks the container
//! contract, the local equal of `aws sagemaker-runtime invoke-endpoint`.
//! Prints the response body to stdout; on a non-2xx answer prints the status
//! and body to stderr and exits non-zero.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::CommandError;

/// Arguments of `modelstage invoke`.
#[derive(clap::Args, Debug)]
pub struct InvokeArgs {
    /// The endpoint; `/invocations` is added when the URL has no path.
    #[arg(default_value = "http://localhost:8080")]
    pub url: String,
    /// Content-Type of the request. Without it the request says
    /// application/octet-stream, as InvokeEndpoint does.
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Accept of the request (absent: the endpoint's default).
    #[arg(long, value_name = "TYPE")]
    pub accept: Option<String>,
    /// The request body, as text.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// The request body, from a file (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// An extra request header, repeatable, e.g.
    /// `--header X-Amzn-SageMaker-Custom-Attributes=trace=1`.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// The model of a multi-model endpoint to invoke (`InvokeEndpoint`'s TargetModel): a
    /// `model.tar.gz` under the endpoint's ModelDataUrl folder, e.g. `a.tar.gz`. Sent as
    /// X-Amzn-SageMaker-Target-Model.
    #[arg(long, value_name = "NAME")]
    pub target_model: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// Also print the status and response headers to stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// `modelstage invoke`: the body of a successful answer on stdout (and, with `--verbose`, its
/// status line and headers on stderr); any other outcome is the `Err` for `main` to print.
pub fn run(args: InvokeArgs) -> Result<(), CommandError> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    invoke(&args, &mut stdout.lock(), &mut stderr.lock())
}

/// Sends the request and writes a successful answer to `out` (and its head to `err` with
/// `--verbose`). An answer that is not a success is [`CommandError::Answered`], which shows its
/// head and body as the endpoint sent them.
pub fn invoke(args: &InvokeArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CommandError> {
    let answer = send(args).map_err(|e| CommandError::failed("invoke", e))?;
    let head = answer.head(args.verbose);
    if !answer.success() {
        let mut body = String::from_utf8_lossy(&answer.body).into_owned();
        // `main` ends the message with its own line break.
        if body.ends_with('\n') {
            body.pop();
        }
        return Err(CommandError::Answered { head, body });
    }
    if args.verbose {
        // The report of a verbose run; a terminal that is gone leaves nothing to tell.
        let _ = writeln!(err, "{head}");
    }
    out.write_all(&answer.body)
        .and_then(|_| out.flush())
        .map_err(|e| CommandError::failed("invoke", InvokeError::Output(e)))
}

/// Why `modelstage invoke` got no answer to show.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The endpoint given is not a URL.
    #[error("'{url}' is not a URL: {error}")]
    NotAUrl {
        /// As given.
        url: String,
        /// Why it does not parse.
        error: <reqwest::Url as std::str::FromStr>::Err,
    },
    /// Neither `--body` nor `--body-file` was given.
    #[error("give the request body: --body TEXT or --body-file FILE")]
    NoBody,
    /// The body file (or stdin, `-`) cannot be read.
    #[error("cannot read {what}: {error}")]
    ReadBody {
        /// `stdin` or the file's path.
        what: String,
        /// Why.
        error: std::io::Error,
    },
    /// A `--header` without `=` or `:`.
    #[error("--header '{0}' must look like NAME=VALUE")]
    BadHeader(String),
    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client: {0}")]
    Client(reqwest::Error),
    /// Nothing listens at the URL.
    #[error("cannot connect to {url}: is the endpoint running? ({error})")]
    Connect {
        /// Where the request went.
        url: reqwest::Url,
        /// The client's words.
        error: reqwest::Error,
    },
    /// No answer within `--timeout`.
    #[error("no answer from {url} within {seconds} s")]
    Timeout {
        /// Where the request went.
        url: reqwest::Url,
        /// `--timeout`.
        seconds: u64,
    },
    /// The request cannot be built (a header name or value HTTP does not allow).
    #[error("invalid request: {0}")]
    InvalidRequest(reqwest::Error),
    /// The request failed on the way.
    #[error("request to {url} failed: {error}")]
    Request {
        /// Where the request went.
        url: reqwest::Url,
        /// The client's words.
        error: reqwest::Error,
    },
    /// The answer's body broke off.
    #[error("reading the answer from {url} failed: {error}")]
    ReadAnswer {
        /// Where the request went.
        url: reqwest::Url,
        /// The client's words.
        error: reqwest::Error,
    },
    /// The body cannot be written to stdout.
    #[error("cannot write the answer: {0}")]
    Output(std::io::Error),
}

/// An endpoint's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `HTTP 415 Unsupported Media Type`, and with `headers` one `name: value` line per header.
    pub fn head(&self, headers: bool) -> String {
        let mut head = format!("HTTP {} {}", self.status, self.reason);
        if headers {
            for (name, value) in &self.headers {
                head.push_str(&format!("\n{name}: {value}"));
            }
        }
        head
    }
}

/// The URL requests go to: `http://host:port` becomes
/// `http://host:port/invocations`; a URL with a path is used as given.
pub fn invocations_url(url: &str) -> Result<reqwest::Url, InvokeError> {
    let text = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let mut parsed = reqwest::Url::parse(&text).map_err(|error| InvokeError::NotAUrl {
        url: url.to_string(),
        error,
    })?;
    if parsed.path().is_empty() || parsed.path() == "/" {
        parsed.set_path("/invocations");
    }
    Ok(parsed)
}

fn body(args: &InvokeArgs) -> Result<Vec<u8>, InvokeError> {
    match (&args.body, &args.body_file) {
        (Some(text), _) => Ok(text.as_bytes().to_vec()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|error| InvokeError::ReadBody {
                    what: "stdin".into(),
                    error,
                })?;
            Ok(bytes)
        }
        (None, Some(path)) => std::fs::read(path).map_err(|error| InvokeError::ReadBody {
            what: path.display().to_string(),
            error,
        }),
        (None, None) => Err(InvokeError::NoBody),
    }
}

/// Sends the request; `Err` when no answer came.
pub fn send(args: &InvokeArgs) -> Result<Answer, InvokeError> {
    let url = invocations_url(&args.url)?;
    let body = body(args)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .build()
        .map_err(InvokeError::Client)?;
    let content_type = args.content_type.as_deref().unwrap_or("application/octet-stream");
    let mut request = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body);
    if let Some(accept) = &args.accept {
        request = request.header(reqwest::header::ACCEPT, accept.as_str());
    }
    if let Some(target) = &args.target_model {
        request = request.header("X-Amzn-SageMaker-Target-Model", target.as_str());
    }
    for header in &args.headers {
        let (name, value) = header
            .split_once('=')
            .or_else(|| header.split_once(':'))
            .ok_or_else(|| InvokeError::BadHeader(header.clone()))?;
        request = request.header(name.trim(), value.trim());
    }
    let response = request.send().map_err(|error| {
        let url = url.clone();
        if error.is_connect() {
            InvokeError::Connect { url, error }
        } else if error.is_timeout() {
            InvokeError::Timeout {
                url,
                seconds: args.timeout,
            }
        } else if error.is_builder() {
            InvokeError::InvalidRequest(error)
        } else {
            InvokeError::Request { url, error }
        }
    })?;
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response
        .bytes()
        .map_err(|error| InvokeError::ReadAnswer { url, error })?
        .to_vec();
    Ok(Answer {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_string(),
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    /// Serves one request with `status` and `body`; returns the URL and a
    /// handle yielding the raw request head and body it received.
    fn one_shot(status: &'static str, body: &'static str) -> (String, thread::JoinHandle<(String, Vec<u8>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut request_body = vec![0; length];
            reader.read_exact(&mut request_body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            (head, request_body)
        });
        (url, handle)
    }

    fn args(url: &str, extra: Vec<String>) -> InvokeArgs {
        InvokeArgs {
            url: url.into(),
            content_type: Some("text/csv".into()),
            accept: Some("application/json".into()),
            body: Some("1,2".into()),
            body_file: None,
            headers: extra,
            target_model: None,
            timeout: 5,
            verbose: false,
        }
    }

    #[test]
    fn prints_the_body_and_sends_the_headers() {
        let (url, server) = one_shot("200 OK", "{\"score\": 1}");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        invoke(
            &args(&url, vec!["X-Amzn-SageMaker-Custom-Attributes=trace=1".into()]),
            &mut out,
            &mut err,
        )
        .unwrap();
        assert_eq!(out, b"{\"score\": 1}");
        assert!(err.is_empty());
        let (head, body) = server.join().unwrap();
        assert!(head.starts_with("POST /invocations HTTP/1.1"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-type: text/csv"), "{head}");
        assert!(head.contains("accept: application/json"), "{head}");
        assert!(
            head.contains("x-amzn-sagemaker-custom-attributes: trace=1"),
            "{head}"
        );
        assert_eq!(body, b"1,2");
    }

    #[test]
    fn the_target_model_is_a_header() {
        let (url, server) = one_shot("200 OK", "ok");
        let mut request = args(&url, vec![]);
        request.target_model = Some("a.tar.gz".into());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        invoke(&request, &mut out, &mut err).unwrap();
        let (head, _) = server.join().unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains("x-amzn-sagemaker-target-model: a.tar.gz"),
            "{head}"
        );
    }

    #[test]
    fn an_error_status_is_the_error_with_status_line_and_body() {
        let (url, server) = one_shot("415 Unsupported Media Type", "{\"error\": \"text/csv only\"}");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let failure = invoke(&args(&url, vec![]), &mut out, &mut err).unwrap_err();
        assert!(out.is_empty() && err.is_empty());
        // `main` prints it with a line break after it.
        assert_eq!(
            failure.to_string(),
            "HTTP 415 Unsupported Media Type\n{\"error\": \"text/csv only\"}"
        );
        assert_eq!(failure.exit_code(), std::process::ExitCode::FAILURE);
        server.join().unwrap();
    }

    #[test]
    fn verbose_shows_the_headers_of_a_success_and_of_an_error() {
        let (url, server) = one_shot("200 OK", "fine");
        let mut request = args(&url, vec![]);
        request.verbose = true;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        invoke(&request, &mut out, &mut err).unwrap();
        server.join().unwrap();
        let err = String::from_utf8(err).unwrap();
        assert!(err.starts_with("HTTP 200 OK\n"), "{err}");
        assert!(err.contains("content-type: text/plain\n"), "{err}");
        assert_eq!(out, b"fine");

        let (url, server) = one_shot("500 Internal Server Error", "broken\n");
        request.url = url;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let message = invoke(&request, &mut out, &mut err).unwrap_err().to_string();
        server.join().unwrap();
        assert!(out.is_empty() && err.is_empty());
        assert!(
            message.starts_with("HTTP 500 Internal Server Error\n"),
            "{message}"
        );
        assert!(message.contains("\ncontent-type: text/plain\n"), "{message}");
        assert!(message.ends_with("\nbroken"), "{message}");
    }

    #[test]
    fn no_endpoint_is_a_clear_error() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let failure = invoke(&args("http://127.0.0.1:9", vec![]), &mut out, &mut err).unwrap_err();
        assert!(out.is_empty() && err.is_empty());
        let message = failure.to_string();
        assert!(
            message.starts_with("modelstage invoke: cannot connect to http://127.0.0.1:9/invocations"),
            "{message}"
        );
    }

    #[test]
    fn urls_get_invocations_only_without_a_path() {
        assert_eq!(
            invocations_url("http://localhost:8080").unwrap().as_str(),
            "http://localhost:8080/invocations"
        );
        assert_eq!(
            invocations_url("localhost:9000/").unwrap().as_str(),
            "http://localhost:9000/invocations"
        );
        assert_eq!(
            invocations_url("http://h:1/models/m/invoke").unwrap().as_str(),
            "http://h:1/models/m/invoke"
        );
        assert!(invocations_url("http://").is_err());
    }

    #[test]
    fn a_malformed_header_is_refused() {
        let err = send(&args("http://127.0.0.1:9", vec!["NoSeparator".into()])).unwrap_err();
        assert!(matches!(err, InvokeError::BadHeader(_)), "{err}");
        assert!(err.to_string().contains("NAME=VALUE"), "{err}");
    }
}
