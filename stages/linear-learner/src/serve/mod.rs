//! Serving: request decoding and response encoding.

mod dense_json;
pub mod input;
pub mod output;
