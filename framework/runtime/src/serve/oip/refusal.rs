//! Why the protocol's routes refuse a request: one type that knows its
//! status and renders the protocol's error body (`{"error": "..."}`), so a
//! route returns it and the answer follows. The names in a message are
//! quoted only when a refusal is built: the checks run on every request.

use std::fmt;

use actix_web::http::header::{HeaderValue, ALLOW};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use modelstage_contract::excerpt::quoted;
use modelstage_contract::oip::{self, Datatype, OipError};

use super::routes::error;
use crate::serve::mme::registry::LoadRefusal;

/// A request the protocol's routes do not serve, or whose tensors are not
/// the model's.
#[derive(Debug, thiserror::Error)]
pub(super) enum OipRefusal {
    /// 404: no route of the protocol has this path.
    #[error(
        "no route for {method} {}: the Open Inference Protocol routes are GET /v2, GET \
         /v2/health/live, GET /v2/health/ready, GET /v2/models/{{name}}[/versions/{{version}}][/ready] \
         and POST /v2/models/{{name}}[/versions/{{version}}]/infer",
        quoted(path.as_bytes())
    )]
    NoRoute {
        /// The request's method.
        method: Method,
        /// Its path.
        path: String,
    },
    /// 405: the route takes another method (named in the `Allow` header).
    #[error("{method} is not allowed on {}", quoted(path.as_bytes()))]
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// Its path.
        path: String,
        /// The method the route takes.
        allow: &'static str,
    },
    /// 404: a single-model server asked for a model (or version) it does not serve.
    #[error(
        "unknown {asked}: this server serves model {} version {}",
        quoted(served.as_bytes()),
        quoted(version.as_bytes())
    )]
    UnknownModel {
        /// What the path names.
        asked: Asked,
        /// The model served.
        served: String,
        /// Its version.
        version: String,
    },
    /// 404: a multi-model endpoint asked for a version its models do not have.
    #[error(
        "unknown {asked}: the models of this multi-model endpoint have version {}",
        quoted(version.as_bytes())
    )]
    UnknownVersion {
        /// What the path names.
        asked: Asked,
        /// The version of the endpoint's models.
        version: String,
    },
    /// 404: a multi-model endpoint asked for a model it has not loaded.
    #[error("{asked} is not loaded on this multi-model endpoint (load it with POST /models)")]
    NotLoaded {
        /// What the path names.
        asked: Asked,
    },
    /// A model of a multi-model endpoint that failed to load, or was not
    /// ready in time (the load's own status).
    #[error("{}", .0.message())]
    Loading(LoadRefusal),
    /// 400: the `Inference-Header-Content-Length` header is not a number.
    #[error(
        "the {} header must be a number of bytes, got {}",
        oip::HEADER_LENGTH,
        quoted(value)
    )]
    HeaderLength {
        /// The header's value, as sent.
        value: Vec<u8>,
    },
    /// 400: an input the model does not declare.
    #[error(
        "input {} is not an input of model {}; its inputs are {}",
        quoted(input.as_bytes()),
        quoted(model.as_bytes()),
        Listed(declared)
    )]
    NotAnInput {
        /// The input's name.
        input: String,
        /// The model's name.
        model: String,
        /// The names of the model's inputs.
        declared: Vec<String>,
    },
    /// 400: an input the model declares is not sent.
    #[error("input {} is missing; model {} needs it", quoted(input.as_bytes()), quoted(model.as_bytes()))]
    MissingInput {
        /// The input's name.
        input: String,
        /// The model's name.
        model: String,
    },
    /// 400: an input of another datatype than the model's.
    #[error("input {} is {sent}, but the model takes {takes}", quoted(input.as_bytes()))]
    Datatype {
        /// The input's name.
        input: String,
        /// The datatype sent.
        sent: Datatype,
        /// The datatype the model declares.
        takes: String,
    },
    /// 400: an input of a shape the model does not take.
    #[error(
        "input {} has shape {sent:?}, but the model takes {takes:?} (-1: any size)",
        quoted(input.as_bytes())
    )]
    Shape {
        /// The input's name.
        input: String,
        /// The shape sent.
        sent: Vec<usize>,
        /// The shape the model declares.
        takes: Vec<i64>,
    },
    /// 400: the request is not an inference request the codec reads, or its
    /// tensors cannot be written as records.
    #[error(transparent)]
    Codec(#[from] OipError),
}

impl OipRefusal {
    /// The HTTP status it answers with.
    pub(super) fn status(&self) -> u16 {
        match self {
            OipRefusal::NoRoute { .. }
            | OipRefusal::UnknownModel { .. }
            | OipRefusal::UnknownVersion { .. }
            | OipRefusal::NotLoaded { .. } => 404,
            OipRefusal::MethodNotAllowed { .. } => 405,
            OipRefusal::Loading(e) => e.status(),
            OipRefusal::HeaderLength { .. }
            | OipRefusal::NotAnInput { .. }
            | OipRefusal::MissingInput { .. }
            | OipRefusal::Datatype { .. }
            | OipRefusal::Shape { .. }
            | OipRefusal::Codec(_) => 400,
        }
    }
}

impl ResponseError for OipRefusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = error(self.status(), &self.to_string());
        if let OipRefusal::MethodNotAllowed { allow, .. } = self {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// The model (and version) a path names: `model "m"`, `model "m" version "1"`.
#[derive(Debug)]
pub(super) struct Asked {
    /// The name, as decoded from the path.
    pub name: String,
    /// The version, when the path names one.
    pub version: Option<String>,
}

impl fmt::Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model {}", quoted(self.name.as_bytes()))?;
        if let Some(version) = &self.version {
            write!(f, " version {}", quoted(version.as_bytes()))?;
        }
        Ok(())
    }
}

/// Names, quoted and joined by `, `.
struct Listed<'a>(&'a [String]);

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&quoted(name.as_bytes()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(version: Option<&str>) -> Asked {
        Asked {
            name: "m".into(),
            version: version.map(str::to_string),
        }
    }

    #[test]
    fn messages_and_statuses() {
        let cases = [
            (
                OipRefusal::NoRoute {
                    method: Method::GET,
                    path: "/v2/x".into(),
                },
                404,
                "no route for GET \"/v2/x\": the Open Inference Protocol routes are GET /v2, GET \
                 /v2/health/live, GET /v2/health/ready, GET \
                 /v2/models/{name}[/versions/{version}][/ready] and POST \
                 /v2/models/{name}[/versions/{version}]/infer",
            ),
            (
                OipRefusal::MethodNotAllowed {
                    method: Method::GET,
                    path: "/v2/models/m/infer".into(),
                    allow: "POST",
                },
                405,
                "GET is not allowed on \"/v2/models/m/infer\"",
            ),
            (
                OipRefusal::UnknownModel {
                    asked: asked(Some("2")),
                    served: "s".into(),
                    version: "1".into(),
                },
                404,
                "unknown model \"m\" version \"2\": this server serves model \"s\" version \"1\"",
            ),
            (
                OipRefusal::UnknownVersion {
                    asked: asked(Some("2")),
                    version: "1".into(),
                },
                404,
                "unknown model \"m\" version \"2\": the models of this multi-model endpoint have \
                 version \"1\"",
            ),
            (
                OipRefusal::NotLoaded { asked: asked(None) },
                404,
                "model \"m\" is not loaded on this multi-model endpoint (load it with POST /models)",
            ),
            (
                OipRefusal::HeaderLength { value: b"x".to_vec() },
                400,
                "the Inference-Header-Content-Length header must be a number of bytes, got \"x\"",
            ),
            (
                OipRefusal::NotAnInput {
                    input: "c".into(),
                    model: "m".into(),
                    declared: vec!["a".into(), "b".into()],
                },
                400,
                "input \"c\" is not an input of model \"m\"; its inputs are \"a\", \"b\"",
            ),
            (
                OipRefusal::Shape {
                    input: "b".into(),
                    sent: vec![1, 3],
                    takes: vec![-1, 2],
                },
                400,
                "input \"b\" has shape [1, 3], but the model takes [-1, 2] (-1: any size)",
            ),
        ];
        for (refusal, status, message) in cases {
            assert_eq!(refusal.status(), status, "{message}");
            assert_eq!(refusal.to_string(), message);
        }
    }

    #[tokio::test]
    async fn renders_the_protocol_body() {
        let refusal = OipRefusal::MethodNotAllowed {
            method: Method::GET,
            path: "/v2/models/m/infer".into(),
            allow: "POST",
        };
        let response = refusal.error_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get(ALLOW).unwrap(), "POST");
        let body = actix_web::body::to_bytes(response.into_body()).await.unwrap();
        assert_eq!(
            body,
            r#"{"error":"GET is not allowed on \"/v2/models/m/infer\""}"#.as_bytes()
        );
    }
}
