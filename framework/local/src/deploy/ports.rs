//! Free ports for the containers of a local endpoint.
//!
//! A pipeline container gets `SAGEMAKER_BIND_TO_PORT` and, for any second port it needs,
//! `SAGEMAKER_SAFE_PORT_RANGE` (docs/contract.md (Serial pipelines)). Each container gets a block of consecutive
//! ports that were free when asked for: the first to listen on, the rest as its safe range. A port
//! can still be taken between the check and the container's bind; the container then fails to
//! start and says so, which `deploy` reports.

use std::net::TcpListener;

use anyhow::bail;

/// Ports per container: one to listen on and a safe range of the next ones.
pub const BLOCK: u16 = 8;

/// Where the ports of one container are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBlock {
    pub bind: u16,
    /// `SAGEMAKER_SAFE_PORT_RANGE`, inclusive.
    pub safe: (u16, u16),
}

impl PortBlock {
    /// `SAGEMAKER_SAFE_PORT_RANGE` as the contract writes it: `"XXXX-YYYY"`.
    pub fn safe_range(&self) -> String {
        format!("{}-{}", self.safe.0, self.safe.1)
    }
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok()
}

/// A port that is free now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("0.0.0.0", 0))?.local_addr()?.port())
}

/// A block of [`BLOCK`] consecutive free ports, none of them in `taken`.
pub fn free_block(taken: &[u16]) -> anyhow::Result<PortBlock> {
    for _ in 0..64 {
        let first = free_port()?;
        let Some(last) = first.checked_add(BLOCK - 1) else {
            continue;
        };
        let clear = (first..=last).all(|p| !taken.contains(&p) && (p == first || is_free(p)));
        if clear {
            return Ok(PortBlock {
                bind: first,
                safe: (first + 1, last),
            });
        }
    }
    bail!("cannot find {BLOCK} consecutive free ports for a container")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_free_and_disjoint() {
        let a = free_block(&[]).unwrap();
        let taken: Vec<u16> = (a.bind..=a.safe.1).collect();
        let b = free_block(&taken).unwrap();
        assert_eq!(a.safe, (a.bind + 1, a.bind + BLOCK - 1));
        assert!(b.bind > a.safe.1 || b.safe.1 < a.bind, "{a:?} overlaps {b:?}");
        assert_eq!(a.safe_range(), format!("{}-{}", a.bind + 1, a.bind + 7));
        // Every port of the block can be bound.
        for p in a.bind..=a.safe.1 {
            assert!(is_free(p), "port {p}");
        }
    }
}
