//! One CSV field as pandas reads it: which texts are missing values and how a
//! numeric field parses. Shared by training and serving so both read a file
//! the same way.

use modelstage_sdk::excerpt;

/// pandas' default NA texts (`pandas._libs.parsers.STR_NA_VALUES`). A field
/// equal to one of them, byte for byte, is missing; the empty field is too.
const NA_TEXTS: [&[u8]; 17] = [
    b"#N/A",
    b"#N/A N/A",
    b"#NA",
    b"-1.#IND",
    b"-1.#QNAN",
    b"-NaN",
    b"-nan",
    b"1.#IND",
    b"1.#QNAN",
    b"<NA>",
    b"N/A",
    b"NA",
    b"NULL",
    b"NaN",
    b"None",
    b"n/a",
    b"nan",
];

/// `null` is NA as well; kept apart because the table above is the
/// length-sorted list pandas documents, plus this one.
const NULL: &[u8] = b"null";

/// Is `field` a missing value? Spaces count: `" NA"` is text, as in pandas.
#[inline]
pub fn is_missing(field: &[u8]) -> bool {
    if field.is_empty() {
        return true;
    }
    // Every NA text is at most 8 bytes long and starts with one of a few
    // bytes; the check below keeps the common numeric field off the table.
    if field.len() > 8 || !matches!(field[0], b'#' | b'-' | b'1' | b'<' | b'N' | b'n') {
        return false;
    }
    field == NULL || NA_TEXTS.contains(&field)
}

/// Why a numeric field is not a number scikit-learn accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// Text that pandas would not read as a float (the column becomes text).
    NotANumber,
    /// `inf`, `1e400`: pandas reads it, scikit-learn's imputer rejects it.
    Infinite,
}

impl NumberError {
    /// A sentence fragment for messages: "'abc' is not a number".
    pub fn describe(self, field: &[u8]) -> String {
        let shown = excerpt(field);
        match self {
            NumberError::NotANumber => format!("'{shown}' is not a number"),
            NumberError::Infinite => {
                format!("'{shown}' is infinite; only finite numbers or an empty field are accepted")
            }
        }
    }
}

/// Parses a numeric feature field: `Ok(None)` when missing, the number
/// otherwise. Spaces and tabs around the number are allowed (pandas skips
/// them); anything else is an error.
#[inline]
pub fn parse_number(field: &[u8]) -> Result<Option<f64>, NumberError> {
    if is_missing(field) {
        return Ok(None);
    }
    match parse_float(field) {
        // A NaN spelling that is not an NA text (`NAN`, ` nan`) is text to
        // pandas, so the column would not be numeric.
        Some(v) if v.is_nan() => Err(NumberError::NotANumber),
        Some(v) if v.is_infinite() => Err(NumberError::Infinite),
        Some(v) => Ok(Some(v)),
        None => Err(NumberError::NotANumber),
    }
}

/// Parses a label field: missing is NaN, and every spelling Python's
/// `float()` takes (`inf`, `NAN`) is accepted, since the Python container
/// copies the label with numpy rather than validating it.
#[inline]
pub fn parse_label(field: &[u8]) -> Option<f64> {
    if is_missing(field) {
        return Some(f64::NAN);
    }
    parse_float(field)
}

/// Correctly rounded parse of a decimal number with optional surrounding
/// whitespace: `str::parse::<f64>`'s result, with a fast path for the short
/// decimals CSV files are made of. Rust's grammar accepts the forms pandas
/// does (`.5`, `5.`, `+5`, `1E+05`, `inf`) and rejects the ones it does not
/// (`1_0`, `0x10`).
#[inline]
fn parse_float(field: &[u8]) -> Option<f64> {
    modelstage_sdk::number::parse_f64(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn na_texts_are_missing_byte_for_byte() {
        for na in NA_TEXTS.iter().chain([&NULL]) {
            assert!(is_missing(na), "{}", excerpt(na));
        }
        assert!(is_missing(b""));
        // Spaces and other spellings are text, as in pandas.
        for text in [
            &b" NA"[..],
            b"NA ",
            b"NAN",
            b"na",
            b"Null",
            b"none",
            b" ",
            b"missing",
        ] {
            assert!(!is_missing(text), "{}", excerpt(text));
        }
    }

    #[test]
    fn numbers_with_spaces_and_exponents_parse() {
        assert_eq!(parse_number(b" 0.44"), Ok(Some(0.44)));
        assert_eq!(parse_number(b"0.44 \t"), Ok(Some(0.44)));
        assert_eq!(parse_number(b"4.4E-1"), Ok(Some(0.44)));
        assert_eq!(parse_number(b"1e+05"), Ok(Some(100000.0)));
        assert_eq!(parse_number(b".5"), Ok(Some(0.5)));
        assert_eq!(parse_number(b"5."), Ok(Some(5.0)));
        assert_eq!(parse_number(b"+5"), Ok(Some(5.0)));
        assert_eq!(
            parse_number(b"-0.0").map(|v| v.map(f64::to_bits)),
            Ok(Some((-0.0f64).to_bits()))
        );
        assert_eq!(parse_number(b"1e-400"), Ok(Some(0.0)));
    }

    #[test]
    fn fast_path_agrees_with_the_standard_parser() {
        let cases = [
            "0.455",
            "-0.455",
            "+12",
            "12.",
            ".5",
            "1e-05",
            "1E+05",
            "4.4e-1",
            "9007199254740992",
            "9007199254740993",
            "0.1e22",
            "1e23",
            "123456789012345678",
            "1234567890123456789012",
            "0.000000000000000000001",
            "-0",
            "-0.0",
            "3.14159265358979",
            "1e-22",
            "17e-23",
            "1e",
            "1e+",
            "1.2.3",
            "1-2",
            "e5",
            ".",
            "-",
            "+.5",
            "5.e3",
            "1e0001",
        ];
        for text in cases {
            let std = text.parse::<f64>().ok();
            assert_eq!(
                parse_float(text.as_bytes()).map(f64::to_bits),
                std.map(f64::to_bits),
                "{text}"
            );
        }
    }

    #[test]
    fn fast_path_agrees_on_random_decimals() {
        // A fixed LCG: the same 200,000 strings on every run.
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        for _ in 0..200_000 {
            let int_digits = next(12) as usize;
            let frac_digits = next(12) as usize;
            let mut text = String::new();
            if next(4) == 0 {
                text.push('-');
            }
            text.extend((0..int_digits).map(|_| char::from(b'0' + next(10) as u8)));
            if frac_digits > 0 || int_digits == 0 {
                text.push('.');
                text.extend((0..frac_digits.max(1)).map(|_| char::from(b'0' + next(10) as u8)));
            }
            if next(5) == 0 {
                text.push_str(&format!("e{}", next(60) as i64 - 30));
            }
            let std = text.parse::<f64>().map(f64::to_bits).ok();
            assert_eq!(parse_float(text.as_bytes()).map(f64::to_bits), std, "{text}");
        }
    }

    #[test]
    fn missing_and_bad_numbers() {
        assert_eq!(parse_number(b""), Ok(None));
        assert_eq!(parse_number(b"NaN"), Ok(None));
        assert_eq!(parse_number(b"  "), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"NAN"), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b" nan"), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"1_0"), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"0x10"), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"1 2"), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"M"), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"\xff"), Err(NumberError::NotANumber));
        assert_eq!(parse_number(b"inf"), Err(NumberError::Infinite));
        assert_eq!(parse_number(b"1e400"), Err(NumberError::Infinite));
    }

    #[test]
    fn labels_take_python_float_spellings() {
        assert_eq!(parse_label(b"10"), Some(10.0));
        assert_eq!(parse_label(b" 7 "), Some(7.0));
        assert!(parse_label(b"").is_some_and(f64::is_nan));
        assert!(parse_label(b"NAN").is_some_and(f64::is_nan));
        assert_eq!(parse_label(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_label(b"ten"), None);
    }

    #[test]
    fn fields_in_messages_are_bounded_and_escaped() {
        let long = vec![b'x'; 5 << 20];
        let message = NumberError::NotANumber.describe(&long);
        assert!(message.len() < 300, "{}", message.len());
        assert!(message.contains("(5242880 bytes)"), "{message}");
        let forged = NumberError::Infinite.describe(b"inf\n2026 INFO forged");
        assert!(!forged.contains('\n'), "{forged}");
    }
}
