//! The payload limit (`SAGEMAKER_MAX_PAYLOAD_IN_MB`), one rule for the
//! server and the router of local mode, so both refuse the same bodies with
//! the same message.
//!
//! The limit is counted in MB of 1,048,576 bytes, as MMS counts. `0` means
//! the endpoint sets no limit of its own (docs/contract.md); every endpoint
//! still reads at most [`HARD_LIMIT_BYTES`], so that no body is unbounded.

/// The bytes of a megabyte as SageMaker counts it for payload limits
/// (MMS: value × 1,048,576).
pub const MB: usize = 1024 * 1024;

/// The payload limit when nothing sets one (the platform's 6 MB).
pub const DEFAULT_MAX_PAYLOAD_IN_MB: u32 = 6;

/// The largest body any endpoint reads, whatever the limit says.
pub const HARD_LIMIT_BYTES: usize = 1 << 30;

/// The most bytes of a request body an endpoint with `max_payload_in_mb`
/// reads: the limit in bytes, at most [`HARD_LIMIT_BYTES`] (also for `0`).
pub fn limit_bytes(max_payload_in_mb: u64) -> usize {
    if max_payload_in_mb == 0 {
        HARD_LIMIT_BYTES
    } else {
        usize::try_from(max_payload_in_mb)
            .unwrap_or(usize::MAX)
            .saturating_mul(MB)
            .min(HARD_LIMIT_BYTES)
    }
}

/// What a 413 says of a body over [`limit_bytes`].
pub fn too_large_message(max_payload_in_mb: u64) -> String {
    let limit = limit_bytes(max_payload_in_mb);
    if limit == HARD_LIMIT_BYTES {
        format!("the request body is larger than {HARD_LIMIT_BYTES} bytes, the most the endpoint reads")
    } else {
        format!(
            "the request body is larger than the {max_payload_in_mb} MB limit (SAGEMAKER_MAX_PAYLOAD_IN_MB)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_huge_limits_are_bounded() {
        assert_eq!(limit_bytes(6), 6 * MB);
        assert_eq!(limit_bytes(0), HARD_LIMIT_BYTES);
        assert_eq!(limit_bytes(u64::MAX), HARD_LIMIT_BYTES);
        assert!(too_large_message(6).contains("6 MB limit"));
        assert!(too_large_message(0).contains("the most the endpoint reads"));
    }
}
