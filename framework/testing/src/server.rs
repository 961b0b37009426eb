//! A real `modelstage serve` for a stage, on a free port of 127.0.0.1, with a client.
//!
//! `serve` runs the stage in worker processes that are the `modelstage` binary itself, so this
//! needs that binary: `MODELSTAGE_BIN` names it, else the `modelstage` of this test build's
//! profile folder (inside the modelstage workspace), else `modelstage` on `PATH` (`cargo install
//! modelstage` puts it there).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::request::Request;
use crate::Error;

/// How long `serve` may take to answer its first `/ping` (a loaded machine is slow).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A running `modelstage serve`, stopped when dropped. Its log goes to the test's
/// standard error.
pub struct Server {
    child: Child,
    url: String,
    client: reqwest::blocking::Client,
}

/// What the endpoint answered.
#[derive(Debug, Clone)]
pub struct ServerResponse {
    /// The HTTP status.
    pub status: u16,
    /// The Content-Type, if any.
    pub content_type: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`, if any.
    pub custom_attributes: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl ServerResponse {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON (this is a test helper).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the response is not JSON ({e}): {}", self.text()))
    }
}

/// The `modelstage` binary: `MODELSTAGE_BIN`, else the profile folder's, else `PATH`'s.
fn binary() -> Result<PathBuf, Error> {
    if let Some(bin) = std::env::var_os("MODELSTAGE_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let profile = crate::library::profile_dir().ok();
    profile
        .into_iter()
        .chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths))
        .map(|dir| dir.join("modelstage"))
        .find(|candidate| candidate.is_file())
        .ok_or(Error::NoBinary)
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(Error::FreePort)
}

impl Server {
    /// Starts `modelstage serve --stage LIB --model-dir DIR` with extra environment `env` and
    /// waits for `/ping` to answer 200.
    pub fn start(stage: &Path, model_dir: &Path, env: &[(&str, &str)]) -> Result<Server, Error> {
        let bin = binary()?;
        let port = free_port()?;
        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .arg("--stage")
            .arg(stage)
            .arg("--model-dir")
            .arg(model_dir)
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .spawn()
            .map_err(|error| Error::Start { binary: bin, error })?;
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(Error::HttpClient)?;
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            client,
        };
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if server.ping() == Some(200) {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Error::ServeExited(status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::ServeTimeout(START_LIMIT))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The status of `GET /ping`, or `None` when nothing answers.
    pub fn ping(&self) -> Option<u16> {
        self.client
            .get(format!("{}/ping", self.url))
            .timeout(Duration::from_secs(5))
            .send()
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// `POST /invocations` with the request's body and headers.
    pub fn invoke(&self, request: &Request) -> Result<ServerResponse, Error> {
        let mut builder = self
            .client
            .post(format!("{}/invocations", self.url))
            .header("Content-Type", &request.content_type)
            .header("Accept", &request.accept)
            .body(request.body.clone());
        if let Some(attributes) = &request.custom_attributes {
            builder = builder.header("X-Amzn-SageMaker-Custom-Attributes", attributes);
        }
        if let Some(target_model) = &request.target_model {
            builder = builder.header("X-Amzn-SageMaker-Target-Model", target_model);
        }
        let response = builder.send().map_err(Error::Request)?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let status = response.status().as_u16();
        let content_type = header("content-type");
        let custom_attributes = header("x-amzn-sagemaker-custom-attributes");
        let body = response.bytes().map_err(Error::ReadResponse)?.to_vec();
        Ok(ServerResponse {
            status,
            content_type,
            custom_attributes,
            body,
        })
    }
}

impl Drop for Server {
    /// SIGTERM first, so `serve` stops its workers as it does on SageMaker; SIGKILL if it has
    /// not exited within 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
