//! What a hook knows about the request besides its body, and what it answers.

use modelstage_contract::media::media_type;

/// The request's metadata, borrowed for the call.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The correlation id: the same in every log line and every stage of a
    /// pipeline.
    pub request_id: &'a str,
    /// `Content-Type` as sent, parameters included (`text/csv; charset=utf-8`).
    pub content_type: &'a str,
    /// The resolved Accept: the client's, or `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`
    /// (default `application/json`) when it was missing or `*/*`.
    pub accept: &'a str,
    /// `X-Amzn-SageMaker-Custom-Attributes`, when the client sent it.
    pub custom_attributes: Option<&'a str>,
    /// `X-Amzn-SageMaker-Target-Model`: the model of a multi-model endpoint
    /// the request is for (`InvokeEndpoint`'s `TargetModel`), when known.
    /// `None` on a single-model endpoint that got no such header, and under
    /// a runtime older than stage ABI 1.1, which does not pass it.
    pub target_model: Option<&'a str>,
}

impl<'a> Context<'a> {
    /// The Content-Type without parameters, trimmed (`text/csv`). Compare it
    /// case-insensitively (media types are).
    pub fn media_type(&self) -> &'a str {
        media_type(self.content_type)
    }

    /// The Accept header's media types in order, parameters removed
    /// (`text/csv;q=0.5, application/json` gives `text/csv`, `application/json`).
    pub fn accept_types(&self) -> impl Iterator<Item = &'a str> {
        self.accept.split(',').map(media_type).filter(|t| !t.is_empty())
    }

    /// The first of the client's Accept types that is in `supported`
    /// (case-insensitive), or `*/*` resolved to the first supported one.
    pub fn negotiate(&self, supported: &[&'static str]) -> Option<&'static str> {
        for wanted in self.accept_types() {
            if wanted == "*/*" {
                return supported.first().copied();
            }
            if let Some(s) = supported.iter().find(|s| s.eq_ignore_ascii_case(wanted)) {
                return Some(s);
            }
        }
        None
    }
}

/// A hook's answer: the body, its Content-Type (becomes the response's
/// Content-Type as is) and, optionally, `X-Amzn-SageMaker-Custom-Attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The response body.
    pub body: Vec<u8>,
    /// The response's Content-Type.
    pub content_type: String,
    /// `X-Amzn-SageMaker-Custom-Attributes` of the response, if any.
    pub custom_attributes: Option<String>,
}

impl Response {
    /// A response with `body` and `content_type`, no custom attributes.
    pub fn new(body: impl Into<Vec<u8>>, content_type: impl Into<String>) -> Self {
        Response {
            body: body.into(),
            content_type: content_type.into(),
            custom_attributes: None,
        }
    }

    /// Sets `X-Amzn-SageMaker-Custom-Attributes` on the response.
    pub fn with_custom_attributes(mut self, attributes: impl Into<String>) -> Self {
        self.custom_attributes = Some(attributes.into());
        self
    }
}
