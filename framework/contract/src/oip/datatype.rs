//! The tensor datatypes of the Open Inference Protocol and what each holds.

/// A tensor element type, spelled as the protocol spells it (`FP32`, `BYTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Datatype {
    /// `BOOL`.
    Bool,
    /// `UINT8`.
    Uint8,
    /// `UINT16`.
    Uint16,
    /// `UINT32`.
    Uint32,
    /// `UINT64`.
    Uint64,
    /// `INT8`.
    Int8,
    /// `INT16`.
    Int16,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FP16`.
    Fp16,
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
    /// `BYTES`.
    Bytes,
}

/// What kind of value an element holds, which decides how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// BOOL.
    Bool,
    /// A signed integer.
    Signed,
    /// An unsigned integer.
    Unsigned,
    /// A float.
    Float,
    /// BYTES.
    Bytes,
}

impl Datatype {
    /// Every datatype, in the protocol's order.
    pub const ALL: [Datatype; 13] = [
        Datatype::Bool,
        Datatype::Uint8,
        Datatype::Uint16,
        Datatype::Uint32,
        Datatype::Uint64,
        Datatype::Int8,
        Datatype::Int16,
        Datatype::Int32,
        Datatype::Int64,
        Datatype::Fp16,
        Datatype::Fp32,
        Datatype::Fp64,
        Datatype::Bytes,
    ];

    /// The protocol's name (`"FP32"`).
    pub const fn name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Uint8 => "UINT8",
            Datatype::Uint16 => "UINT16",
            Datatype::Uint32 => "UINT32",
            Datatype::Uint64 => "UINT64",
            Datatype::Int8 => "INT8",
            Datatype::Int16 => "INT16",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp16 => "FP16",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }

    /// The datatype of a name; names are case-sensitive, as the protocol's strings are.
    pub fn parse(name: &str) -> Option<Datatype> {
        Datatype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// What kind of value an element holds.
    pub const fn kind(self) -> Kind {
        match self {
            Datatype::Bool => Kind::Bool,
            Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 | Datatype::Uint64 => Kind::Unsigned,
            Datatype::Int8 | Datatype::Int16 | Datatype::Int32 | Datatype::Int64 => Kind::Signed,
            Datatype::Fp16 | Datatype::Fp32 | Datatype::Fp64 => Kind::Float,
            Datatype::Bytes => Kind::Bytes,
        }
    }

    /// Bytes per element in the binary extension; `None` for BYTES, whose
    /// elements carry their own length.
    pub const fn size(self) -> Option<usize> {
        match self {
            Datatype::Bool | Datatype::Uint8 | Datatype::Int8 => Some(1),
            Datatype::Uint16 | Datatype::Int16 | Datatype::Fp16 => Some(2),
            Datatype::Uint32 | Datatype::Int32 | Datatype::Fp32 => Some(4),
            Datatype::Uint64 | Datatype::Int64 | Datatype::Fp64 => Some(8),
            Datatype::Bytes => None,
        }
    }

    /// The range of a signed type.
    pub(crate) const fn signed_range(self) -> (i64, i64) {
        match self {
            Datatype::Int8 => (i8::MIN as i64, i8::MAX as i64),
            Datatype::Int16 => (i16::MIN as i64, i16::MAX as i64),
            Datatype::Int32 => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        }
    }

    /// The largest value of an unsigned type.
    pub(crate) const fn unsigned_max(self) -> u64 {
        match self {
            Datatype::Uint8 => u8::MAX as u64,
            Datatype::Uint16 => u16::MAX as u64,
            Datatype::Uint32 => u32::MAX as u64,
            _ => u64::MAX,
        }
    }

    /// The largest finite magnitude of a float type.
    pub(crate) fn float_max(self) -> f64 {
        match self {
            Datatype::Fp16 => f64::from(half::f16::MAX),
            Datatype::Fp32 => f64::from(f32::MAX),
            _ => f64::MAX,
        }
    }
}

impl std::fmt::Display for Datatype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for d in Datatype::ALL {
            assert_eq!(Datatype::parse(d.name()), Some(d));
        }
        assert_eq!(Datatype::parse("fp32"), None);
        assert_eq!(Datatype::parse("FLOAT"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(Datatype::Fp16.size(), Some(2));
        assert_eq!(Datatype::Int64.size(), Some(8));
        assert_eq!(Datatype::Bool.size(), Some(1));
        assert_eq!(Datatype::Bytes.size(), None);
    }
}
