//! The binary tensor data extension: tensor data as raw bytes after the JSON
//! object, little-endian, row-major, no padding; `BOOL` one byte (0 or 1),
//! `BYTES` each element a 4-byte little-endian length then its bytes.

use super::datatype::{Datatype, Kind};
use super::error::{BinaryError, OipError};
use super::tensor::{check_float, OutOfRange, Tensor, Values};

/// Reads `count` elements of `datatype` from exactly `raw`.
pub fn decode(raw: &[u8], datatype: Datatype, count: usize) -> Result<Values, BinaryError> {
    let Some(size) = datatype.size() else {
        return decode_bytes(raw, count);
    };
    let expected = count.checked_mul(size).ok_or(BinaryError::ShapeTooLarge)?;
    if raw.len() != expected {
        return Err(BinaryError::SizeMismatch {
            size: raw.len(),
            count,
            datatype,
            expected,
        });
    }
    let chunks = raw.chunks_exact(size);
    let values = match datatype {
        Datatype::Bool => Values::Bool(
            chunks
                .enumerate()
                .map(|(i, c)| match c[0] {
                    0 => Ok(false),
                    1 => Ok(true),
                    byte => Err(BinaryError::NotABool { index: i, byte }),
                })
                .collect::<Result<_, _>>()?,
        ),
        Datatype::Uint8 => Values::Unsigned(raw.iter().map(|&b| u64::from(b)).collect()),
        Datatype::Uint16 => Values::Unsigned(
            chunks
                .map(|c| u64::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        Datatype::Uint32 => Values::Unsigned(chunks.map(|c| u64::from(u32::from_le_bytes(arr(c)))).collect()),
        Datatype::Uint64 => Values::Unsigned(chunks.map(|c| u64::from_le_bytes(arr(c))).collect()),
        Datatype::Int8 => Values::Signed(raw.iter().map(|&b| i64::from(b as i8)).collect()),
        Datatype::Int16 => Values::Signed(
            chunks
                .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        Datatype::Int32 => Values::Signed(chunks.map(|c| i64::from(i32::from_le_bytes(arr(c)))).collect()),
        Datatype::Int64 => Values::Signed(chunks.map(|c| i64::from_le_bytes(arr(c))).collect()),
        Datatype::Fp16 => Values::Float(
            chunks
                .map(|c| f64::from(half::f16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        Datatype::Fp32 => Values::Float(chunks.map(|c| f64::from(f32::from_le_bytes(arr(c)))).collect()),
        Datatype::Fp64 => Values::Float(chunks.map(|c| f64::from_le_bytes(arr(c))).collect()),
        Datatype::Bytes => unreachable!("BYTES has no fixed size"),
    };
    Ok(values)
}

fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
    c.try_into().expect("chunks_exact gives N bytes")
}

fn decode_bytes(mut raw: &[u8], count: usize) -> Result<Values, BinaryError> {
    let mut items = Vec::with_capacity(count.min(raw.len() / 4));
    for i in 0..count {
        let Some((len, rest)) = raw.split_first_chunk::<4>() else {
            return Err(BinaryError::NoLength { index: i });
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(BinaryError::PastEnd {
                index: i,
                length: len,
                left: rest.len(),
            });
        }
        let (item, rest) = rest.split_at(len);
        items.push(item.to_vec());
        raw = rest;
    }
    if !raw.is_empty() {
        return Err(BinaryError::LeftOver {
            left: raw.len(),
            count,
        });
    }
    Ok(Values::Bytes(items))
}

/// The raw bytes of a tensor. Values that do not fit the datatype (a float
/// past FP32, a fraction in an integer type) are an error naming the tensor.
pub fn encode(tensor: &Tensor) -> Result<Vec<u8>, OipError> {
    let d = tensor.datatype;
    let mut out = Vec::with_capacity(tensor.len() * d.size().unwrap_or(8));
    match (&tensor.values, d.kind()) {
        (Values::Bool(v), Kind::Bool) => out.extend(v.iter().map(|&b| u8::from(b))),
        (Values::Bytes(v), Kind::Bytes) => {
            for item in v {
                let len = u32::try_from(item.len()).map_err(|_| OipError::ElementTooLarge {
                    output: tensor.name.clone(),
                })?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(item);
            }
        }
        (values, _) => {
            for i in 0..values.len() {
                let x = integer_or_float(values, i);
                write_number(&mut out, d, x).map_err(|e| OipError::ElementDoesNotFit {
                    output: tensor.name.clone(),
                    element: i,
                    problem: e.to_string(),
                })?;
            }
        }
    }
    Ok(out)
}

/// An element as the widest number that holds it exactly.
#[derive(Clone, Copy)]
enum Number {
    Signed(i64),
    Unsigned(u64),
    Float(f64),
}

fn integer_or_float(values: &Values, i: usize) -> Number {
    match values {
        Values::Signed(v) => Number::Signed(v[i]),
        Values::Unsigned(v) => Number::Unsigned(v[i]),
        Values::Float(v) => Number::Float(v[i]),
        Values::Bool(v) => Number::Unsigned(u64::from(v[i])),
        Values::Bytes(_) => Number::Float(f64::NAN),
    }
}

/// Why a number does not fit a datatype.
#[derive(Debug, thiserror::Error)]
enum Unfit {
    #[error(transparent)]
    Float(#[from] OutOfRange),
    #[error("{} is not a whole number, which {datatype} needs", crate::python::float_repr(*value))]
    NotWhole { value: f64, datatype: Datatype },
    #[error("{0} is out of the range of {1}")]
    Range(i128, Datatype),
}

fn write_number(out: &mut Vec<u8>, d: Datatype, x: Number) -> Result<(), Unfit> {
    match d.kind() {
        Kind::Float => {
            let x = match x {
                Number::Signed(n) => n as f64,
                Number::Unsigned(n) => n as f64,
                Number::Float(x) => check_float(d, x)?,
            };
            match d {
                Datatype::Fp16 => out.extend_from_slice(&half::f16::from_f64(x).to_le_bytes()),
                Datatype::Fp32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
                _ => out.extend_from_slice(&x.to_le_bytes()),
            }
        }
        Kind::Signed | Kind::Unsigned => {
            let n: i128 = match x {
                Number::Signed(n) => n.into(),
                Number::Unsigned(n) => n.into(),
                Number::Float(x) if x.fract() == 0.0 && x.abs() < 2f64.powi(64) => x as i128,
                Number::Float(x) => {
                    return Err(Unfit::NotWhole {
                        value: x,
                        datatype: d,
                    })
                }
            };
            let fits = if d.kind() == Kind::Signed {
                let (min, max) = d.signed_range();
                (i128::from(min)..=i128::from(max)).contains(&n)
            } else {
                (0..=i128::from(d.unsigned_max())).contains(&n)
            };
            if !fits {
                return Err(Unfit::Range(n, d));
            }
            let size = d.size().unwrap_or(8);
            out.extend_from_slice(&n.to_le_bytes()[..size]);
        }
        Kind::Bool | Kind::Bytes => unreachable!("handled by the caller"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(datatype: Datatype, values: Values) {
        let n = values.len();
        let t = Tensor::new("t", datatype, vec![n], values.clone()).unwrap();
        let raw = encode(&t).unwrap();
        assert_eq!(decode(&raw, datatype, n).unwrap(), values, "{datatype}");
    }

    #[test]
    fn every_datatype_round_trips() {
        round_trip(Datatype::Bool, Values::Bool(vec![true, false]));
        round_trip(Datatype::Uint8, Values::Unsigned(vec![0, 255]));
        round_trip(Datatype::Uint16, Values::Unsigned(vec![0, 65535]));
        round_trip(Datatype::Uint32, Values::Unsigned(vec![0, u32::MAX.into()]));
        round_trip(Datatype::Uint64, Values::Unsigned(vec![0, u64::MAX]));
        round_trip(Datatype::Int8, Values::Signed(vec![-128, 127]));
        round_trip(Datatype::Int16, Values::Signed(vec![-32768, 32767]));
        round_trip(
            Datatype::Int32,
            Values::Signed(vec![i32::MIN.into(), i32::MAX.into()]),
        );
        round_trip(Datatype::Int64, Values::Signed(vec![i64::MIN, i64::MAX]));
        round_trip(Datatype::Fp16, Values::Float(vec![0.5, -65504.0]));
        round_trip(Datatype::Fp32, Values::Float(vec![1.5, f64::from(0.455f32)]));
        round_trip(Datatype::Fp64, Values::Float(vec![0.1, -1e300]));
        round_trip(
            Datatype::Bytes,
            Values::Bytes(vec![b"M".to_vec(), Vec::new(), vec![0, 255]]),
        );
    }

    #[test]
    fn layout_is_little_endian() {
        let t = Tensor::new("t", Datatype::Fp32, vec![1], Values::Float(vec![1.0])).unwrap();
        assert_eq!(encode(&t).unwrap(), 1.0f32.to_le_bytes());
        let t = Tensor::new("t", Datatype::Bytes, vec![1], Values::Bytes(vec![b"ab".to_vec()])).unwrap();
        assert_eq!(encode(&t).unwrap(), b"\x02\x00\x00\x00ab");
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let e = decode(&[0; 7], Datatype::Fp32, 2).unwrap_err();
        assert_eq!(
            e,
            BinaryError::SizeMismatch {
                size: 7,
                count: 2,
                datatype: Datatype::Fp32,
                expected: 8
            }
        );
        assert!(
            e.to_string().contains("7 bytes but 2 elements of FP32 take 8"),
            "{e}"
        );
        for (raw, datatype, needle) in [
            (&b"\x02"[..], Datatype::Bool, "must be 0 or 1"),
            (b"\x05\x00\x00\x00ab", Datatype::Bytes, "only 2 follow"),
            (b"\x01\x00", Datatype::Bytes, "4-byte length"),
            (b"\x00\x00\x00\x00x", Datatype::Bytes, "1 bytes are left"),
        ] {
            let e = decode(raw, datatype, 1).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn values_that_do_not_fit_are_errors() {
        let t = Tensor::new("s", Datatype::Fp32, vec![1], Values::Float(vec![1e300])).unwrap();
        assert_eq!(
            encode(&t).unwrap_err().to_string(),
            "output \"s\", element 0: 1e+300 is out of the range of FP32"
        );
        let t = Tensor::new("s", Datatype::Int8, vec![1], Values::Signed(vec![300])).unwrap();
        assert!(encode(&t)
            .unwrap_err()
            .to_string()
            .contains("out of the range of INT8"));
    }
}
