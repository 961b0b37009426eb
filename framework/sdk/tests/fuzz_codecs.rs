//! Property tests over every default codec: whatever the body, decoding
//! never panics, fails only with a client error (4xx) whose message is
//! bounded, and what decodes encodes again (or is refused with a 406) into
//! a body bounded by the input; valid arrays round-trip exactly.
//!
//! proptest's default of 256 cases per property keeps the file to a few
//! seconds, so it runs with the other tests; `PROPTEST_CASES=5000` searches
//! longer.

use modelstage_sdk::codecs::{self, Array, CSV, JSON, JSONLINES, NPY, SUPPORTED};
use modelstage_sdk::{ErrorKind, StageError};
use proptest::prelude::*;

/// The longest message a codec error may have.
const MAX_MESSAGE: usize = 1024;

/// A client error: anything but a 5xx.
fn assert_client_error(e: &StageError, body: &[u8]) {
    let shown = String::from_utf8_lossy(body);
    assert!(
        e.kind.is_client_error(),
        "{:?} for {shown:?}: {}",
        e.kind,
        e.message
    );
    assert!(
        e.message.len() <= MAX_MESSAGE,
        "{} bytes: {}",
        e.message.len(),
        e.message
    );
    assert!(!e.message.contains(['\n', '\r']), "unescaped: {:?}", e.message);
}

/// Decodes `body` as `content_type` and, when that works, encodes the array
/// in every format: the checks every body must pass.
fn check_body(body: &[u8], content_type: &str) {
    match codecs::decode(body, content_type) {
        Err(e) => assert_client_error(&e, body),
        Ok(array) => {
            array.check().expect("a decoded array is consistent");
            for accept in SUPPORTED {
                match codecs::encode(&array, accept) {
                    Ok(r) => assert!(
                        r.body.len() <= 64 * body.len() + 512,
                        "{accept}: {} bytes out of {} in",
                        r.body.len(),
                        body.len()
                    ),
                    Err(e) => {
                        assert_eq!(e.kind, ErrorKind::UnsupportedAccept, "{accept}: {}", e.message);
                        assert!(e.message.len() <= MAX_MESSAGE);
                    }
                }
            }
        }
    }
}

/// Bodies drawn from the bytes that matter to a format, so most cases get
/// past the first check.
fn body_of(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max)
}

const CSV_BYTES: &[u8] = b"0123456789.,-+eE \n\r\"naifNI\xff\xc3";
const JSON_BYTES: &[u8] = b"[]{},:0123456789.-+eE\"NaInfity \n\r\t\xe9";

/// A valid encoding with some bytes overwritten, some cut off, or both.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (prop::collection::vec((0..len.max(1), any::<u8>()), 0..6), 0..=len).prop_map(move |(edits, keep)| {
        let mut body = valid.clone();
        for (at, byte) in edits {
            if let Some(b) = body.get_mut(at) {
                *b = byte;
            }
        }
        body.truncate(keep);
        body
    })
}

/// Arrays of 0 to 3 dimensions with values of every kind the codecs write.
fn array() -> impl Strategy<Value = Array> {
    let value = prop_oneof![
        8 => -1e6f64..1e6,
        1 => any::<f64>(),
        1 => prop::sample::select(vec![0.0, -0.0, 1e-5, 1e16, 0.1 + 0.2, f64::MAX, f64::MIN_POSITIVE]),
    ];
    prop::collection::vec(1usize..5, 0..4).prop_flat_map(move |shape| {
        let n = shape.iter().product::<usize>();
        prop::collection::vec(value.clone(), n).prop_map(move |data| Array::new(shape.clone(), data).unwrap())
    })
}

/// `a == b` with NaN equal to NaN and the sign of zero kept.
fn same(a: &Array, b: &Array) -> bool {
    a.shape == b.shape
        && a.data
            .iter()
            .map(|x| x.to_bits())
            .eq(b.data.iter().map(|x| x.to_bits()))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        for content_type in SUPPORTED {
            check_body(&body, content_type);
        }
    }

    #[test]
    fn csv_like_bodies(body in body_of(CSV_BYTES, 200)) {
        check_body(&body, CSV);
    }

    #[test]
    fn json_like_bodies(body in body_of(JSON_BYTES, 200)) {
        check_body(&body, JSON);
        check_body(&body, JSONLINES);
    }

    #[test]
    fn mutated_encodings(
        (content_type, body) in (array(), prop::sample::select(SUPPORTED)).prop_flat_map(|(a, t)| {
            let valid = codecs::encode(&a, t).map(|r| r.body).unwrap_or_default();
            (Just(t), mutated(valid))
        })
    ) {
        check_body(&body, content_type);
    }

    #[test]
    fn npy_headers_with_hostile_fields(
        descr in prop_oneof![
            Just("<f8".to_string()),
            "[<>|=]?[a-zA-Z]?[0-9]{0,3}".prop_map(|s| s),
            any::<String>().prop_map(|s| s.chars().take(6).collect()),
        ],
        shape in prop::collection::vec(prop_oneof![0u64..4, any::<u64>()], 0..4),
        fortran in any::<bool>(),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
        let header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': ({},), }}",
            if fortran { "True" } else { "False" },
            dims.join(", ")
        );
        let mut body = b"\x93NUMPY\x03\x00".to_vec();
        body.extend_from_slice(&(header.len() as u32).to_le_bytes());
        body.extend_from_slice(header.as_bytes());
        body.extend_from_slice(&data);
        check_body(&body, NPY);
    }

    #[test]
    fn valid_arrays_round_trip(a in array()) {
        // JSON and NPY hold any shape exactly.
        for t in [JSON, NPY] {
            let back = codecs::decode(&codecs::encode(&a, t).unwrap().body, t).unwrap();
            prop_assert!(same(&back, &a), "{t}: {back:?} != {a:?}");
        }
        // CSV reads back squeezed, as the legacy toolkit's decoder does.
        if matches!(a.ndim(), 1 | 2) && !a.data.is_empty() {
            let back = codecs::decode(&codecs::encode(&a, CSV).unwrap().body, CSV).unwrap();
            prop_assert!(same(&back, &a.clone().squeeze()), "csv: {back:?} != {a:?}");
        }
        // JSON Lines: one line per element of the first axis.
        if a.ndim() >= 1 && a.shape[0] > 0 {
            let back = codecs::decode(&codecs::encode(&a, JSONLINES).unwrap().body, JSONLINES).unwrap();
            prop_assert!(same(&back, &a), "jsonlines: {back:?} != {a:?}");
        }
    }
}

/// The scenarios found by hand, kept as fixed cases.
#[test]
fn known_hostile_bodies() {
    // A non-ASCII dtype (it once panicked slicing inside a character).
    let mut npy = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    npy.extend_from_slice("{'descr': 'éf8', 'fortran_order': False, 'shape': (1,), }".as_bytes());
    npy.resize(128, b' ');
    npy[127] = b'\n';
    npy.extend_from_slice(&[0; 8]);
    let e = codecs::decode(&npy, NPY).unwrap_err();
    assert_client_error(&e, &npy);
    // A single number is a 0-d array: CSV and JSON Lines cannot hold it (406), JSON can.
    let one = codecs::decode(b"1", JSON).unwrap();
    assert_eq!(one.shape, Vec::<usize>::new());
    for accept in [CSV, JSONLINES] {
        let e = codecs::encode(&one, accept).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedAccept, "{}", e.message);
        assert!(e.message.contains("shape []"), "{}", e.message);
    }
    assert_eq!(codecs::encode(&one, JSON).unwrap().body, b"1.0");
    // A 5 MB field is quoted as an excerpt, escaped.
    let mut csv = b"1,\"".to_vec();
    csv.extend(std::iter::repeat_n(b'x', 5 << 20));
    csv.extend_from_slice(b"\nforged\"\n");
    let e = codecs::decode(&csv, CSV).unwrap_err();
    assert_client_error(&e, b"");
    assert!(e.message.contains("... (5242887 bytes)"), "{}", e.message);
}
