//! A request as a client sends it to `/invocations`, and the stage's answer.

use modelstage_runtime::loader::{Reply, RequestMeta};

/// The default Accept of `serve` (`SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT` unset).
const DEFAULT_ACCEPT: &str = "application/json";

/// One request: body, Content-Type, Accept, custom attributes and target model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request body.
    pub body: Vec<u8>,
    /// Its Content-Type.
    pub content_type: String,
    /// The Accept sent (`application/json` unless set).
    pub accept: String,
    /// `X-Amzn-SageMaker-Custom-Attributes`, if any.
    pub custom_attributes: Option<String>,
    /// `X-Amzn-SageMaker-Target-Model`, if any: what a hook reads as `Context::target_model`.
    pub target_model: Option<String>,
}

impl Request {
    /// A request with this body, `Content-Type: application/json` and the default Accept
    /// (`application/json`, as `serve` resolves a missing or `*/*` Accept).
    pub fn new(body: impl Into<Vec<u8>>) -> Request {
        Request {
            body: body.into(),
            content_type: "application/json".into(),
            accept: DEFAULT_ACCEPT.into(),
            custom_attributes: None,
            target_model: None,
        }
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(value: &serde_json::Value) -> Request {
        Request::new(value.to_string())
    }

    /// Sets the Content-Type.
    pub fn content_type(mut self, content_type: &str) -> Request {
        self.content_type = content_type.into();
        self
    }

    /// Sets the Accept.
    pub fn accept(mut self, accept: &str) -> Request {
        self.accept = accept.into();
        self
    }

    /// The `X-Amzn-SageMaker-Custom-Attributes` header.
    pub fn custom_attributes(mut self, attributes: &str) -> Request {
        self.custom_attributes = Some(attributes.into());
        self
    }

    /// The `X-Amzn-SageMaker-Target-Model` header (on a multi-model endpoint, the model
    /// invoked).
    pub fn target_model(mut self, target_model: &str) -> Request {
        self.target_model = Some(target_model.into());
        self
    }

    /// The metadata the runtime hands to the hooks, with this request id.
    pub(crate) fn meta(&self, request_id: String) -> RequestMeta {
        RequestMeta {
            request_id,
            content_type: self.content_type.clone(),
            accept: self.accept.clone(),
            custom_attributes: self.custom_attributes.clone(),
            target_model: self.target_model.clone(),
        }
    }
}

/// What the stage answered: the response body, its Content-Type and custom attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response body.
    pub body: Vec<u8>,
    /// Its Content-Type.
    pub content_type: String,
    /// `X-Amzn-SageMaker-Custom-Attributes` of the answer, if any.
    pub custom_attributes: Option<String>,
}

impl Answer {
    pub(crate) fn from_reply(reply: Reply) -> Answer {
        Answer {
            body: reply.body.to_vec(),
            content_type: reply.content_type,
            custom_attributes: reply.custom_attributes,
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON (this is a test helper).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {}", self.text()))
    }
}
