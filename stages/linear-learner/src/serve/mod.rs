//! Serving: request decoding and response encoding.

pub mod input;
pub mod output;
