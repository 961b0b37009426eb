//! The JSONPath subset batch transform accepts in `InputFilter` and
//! `OutputFilter` (docs/contract.md (Batch transform)): `$`, `.name`, `*`, `['a','b']`,
//! `[n(,n)]` with negative indexes, and `[start:end]` slices.
//!
//! Semantics follow the service's documentation and JsonPath (Jayway), which
//! it links to: a path that can only select one node (no wildcard, slice,
//! or index list) yields that node and fails if it is missing; any other path
//! yields the array of what it selected. A slice's end is **inclusive**, as
//! the documentation spells out twice (`$[1:4]` is "the second through fifth
//! columns", `[:5]` "index 0 through the sixth column"). A bracket with
//! several names builds an object of those names and must come last; a union
//! of slices with other selectors is refused with the service's message.

use super::error::{NoMatch, PathProblem, SelectProblem, TransformError};
use super::json::Json;

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Name(String),
    Names(Vec<String>),
    Wildcard,
    Indexes(Vec<i64>),
    Slice(Option<i64>, Option<i64>),
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, TransformError> {
        let bad = |problem: PathProblem| TransformError::JsonPath {
            path: text.to_string(),
            problem,
        };
        let rest = text.trim();
        let mut rest = rest.strip_prefix('$').ok_or_else(|| bad(PathProblem::NoRoot))?;
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                if after.starts_with('[') {
                    rest = after;
                    continue;
                }
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() {
                    return Err(bad(PathProblem::EmptyName));
                }
                segments.push(if name == "*" {
                    Segment::Wildcard
                } else {
                    Segment::Name(name.to_string())
                });
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = find_closing_bracket(after).ok_or_else(|| bad(PathProblem::MissingBracket))?;
                segments.push(parse_bracket(&after[..end]).map_err(bad)?);
                rest = &after[end + 1..];
            } else {
                return Err(bad(PathProblem::Unexpected(rest.to_string())));
            }
        }
        for (i, segment) in segments.iter().enumerate() {
            if matches!(segment, Segment::Names(_)) && i + 1 != segments.len() {
                return Err(bad(PathProblem::NamesNotLast));
            }
        }
        Ok(JsonPath {
            text: text.to_string(),
            segments,
        })
    }

    /// `$` alone: selects the whole document.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Applies the path to a document.
    pub fn select(&self, document: &Json) -> Result<Json, NoMatch> {
        let no_match = |problem: SelectProblem| NoMatch {
            path: self.text.clone(),
            problem,
        };
        let mut nodes = vec![document.clone()];
        let mut definite = true;
        for segment in &self.segments {
            let mut next = Vec::new();
            for node in &nodes {
                match segment {
                    Segment::Name(name) => match node.get(name.as_str()) {
                        Some(v) => next.push(v.clone()),
                        _ if definite => return Err(no_match(SelectProblem::NoAttribute(name.clone()))),
                        _ => {}
                    },
                    Segment::Names(names) => {
                        let mut object = Vec::new();
                        for name in names {
                            match node.get(name.as_str()) {
                                Some(v) => object.push((name.clone(), v.clone())),
                                _ if definite => {
                                    return Err(no_match(SelectProblem::NoAttribute(name.clone())))
                                }
                                _ => {}
                            }
                        }
                        next.push(Json::Object(object));
                    }
                    Segment::Wildcard => match node {
                        Json::Object(entries) => next.extend(entries.iter().map(|(_, v)| v.clone())),
                        Json::Array(items) => next.extend(items.iter().cloned()),
                        _ => {}
                    },
                    Segment::Indexes(indexes) => {
                        let items = match node.as_array() {
                            Some(items) => items,
                            None if definite => return Err(no_match(SelectProblem::NotAnArray)),
                            None => continue,
                        };
                        for &index in indexes {
                            match resolve_index(index, items.len()) {
                                Some(i) => next.push(items[i].clone()),
                                None if definite && indexes.len() == 1 => {
                                    return Err(no_match(SelectProblem::OutOfRange {
                                        index,
                                        len: items.len(),
                                    }))
                                }
                                None => {}
                            }
                        }
                    }
                    Segment::Slice(start, end) => {
                        if let Some(items) = node.as_array() {
                            next.extend(slice(items, *start, *end).iter().cloned());
                        } else if definite {
                            return Err(no_match(SelectProblem::NotAnArray));
                        }
                    }
                }
            }
            definite &= match segment {
                Segment::Name(_) | Segment::Names(_) => true,
                Segment::Indexes(indexes) => indexes.len() == 1,
                Segment::Wildcard | Segment::Slice(..) => false,
            };
            nodes = next;
        }
        if definite {
            Ok(nodes.pop().unwrap_or(Json::Null))
        } else {
            Ok(Json::Array(nodes))
        }
    }
}

fn find_closing_bracket(text: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_bracket(inside: &str) -> Result<Segment, PathProblem> {
    let inside = inside.trim();
    if inside == "*" {
        return Ok(Segment::Wildcard);
    }
    if inside.starts_with('\'') || inside.starts_with('"') {
        let names = split_top_level(inside)
            .into_iter()
            .map(|part| {
                let part = part.trim();
                let quoted = part.len() >= 2
                    && ((part.starts_with('\'') && part.ends_with('\''))
                        || (part.starts_with('"') && part.ends_with('"')));
                if quoted {
                    Ok(part[1..part.len() - 1].to_string())
                } else {
                    Err(PathProblem::NotQuoted(part.to_string()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if names.len() == 1 {
            Segment::Name(names.into_iter().next().unwrap_or_default())
        } else {
            Segment::Names(names)
        });
    }
    if inside.contains(':') {
        if inside.contains(',') {
            return Err(PathProblem::SliceUnion(inside.to_string()));
        }
        let (start, end) = inside.split_once(':').unwrap_or((inside, ""));
        return Ok(Segment::Slice(
            parse_optional_int(start)?,
            parse_optional_int(end)?,
        ));
    }
    let indexes = inside
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<i64>()
                .map_err(|_| PathProblem::NotAnIndex(part.trim().to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Segment::Indexes(indexes))
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_optional_int(text: &str) -> Result<Option<i64>, PathProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| PathProblem::NotAnIndex(text.to_string()))
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// Inclusive slice; negative bounds count from the end; bounds past either
/// end are clamped.
fn slice(items: &[Json], start: Option<i64>, end: Option<i64>) -> &[Json] {
    let len = items.len() as i64;
    if len == 0 {
        return &[];
    }
    let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v };
    let first = clamp(start.unwrap_or(0));
    let last = clamp(end.unwrap_or(len - 1)).min(len - 1);
    if first > last || first >= len {
        return &[];
    }
    &items[first as usize..=last as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `path` to the JSON text `doc`, answering compact JSON text.
    fn select(path: &str, doc: &str) -> String {
        let doc = Json::parse(doc.as_bytes()).unwrap();
        String::from_utf8(JsonPath::parse(path).unwrap().select(&doc).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn root_selects_everything() {
        assert!(JsonPath::parse("$").unwrap().is_root());
        assert_eq!(select("$", r#"{"b": 1, "a": 2}"#), r#"{"b":1,"a":2}"#);
    }

    #[test]
    fn dotted_names_and_quoted_names() {
        let doc = r#"{"id": 7, "features": [1, 2], "m": {"x": 1, "y": 2}}"#;
        assert_eq!(select("$.features", doc), "[1,2]");
        assert_eq!(select("$['id']", doc), "7");
        assert_eq!(select("$.m.x", doc), "1");
        // Several names build an object in the order the path names them.
        assert_eq!(select("$['features','id']", doc), r#"{"features":[1,2],"id":7}"#);
        assert_eq!(select("$.m.['x','y']", doc), r#"{"x":1,"y":2}"#);
    }

    #[test]
    fn wildcards_list_children() {
        assert_eq!(select("$.m.*", r#"{"m": {"y": 1, "x": 2}}"#), "[1,2]");
        assert_eq!(select("$[*]", r#"["a", "b"]"#), r#"["a","b"]"#);
    }

    #[test]
    fn indexes_count_from_either_end() {
        let row = r#"["id", "a", "b", "c", "out"]"#;
        assert_eq!(select("$[0]", row), r#""id""#);
        assert_eq!(select("$[-1]", row), r#""out""#);
        assert_eq!(select("$[0,-1]", row), r#"["id","out"]"#);
        assert_eq!(select("$[1,3]", row), r#"["a","c"]"#);
    }

    #[test]
    fn slices_include_their_end() {
        // As the service documents: [1:4] is the second through fifth column,
        // [:5] the first through the sixth.
        let row = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
        assert_eq!(select("$[1:4]", row), "[1,2,3,4]");
        assert_eq!(select("$[:5]", row), "[0,1,2,3,4,5]");
        assert_eq!(select("$[8:]", row), "[8,9]");
        assert_eq!(select("$[1:]", r#"["id", "x"]"#), r#"["x"]"#);
        assert_eq!(select("$[-2:]", row), "[8,9]");
        assert_eq!(select("$[5:2]", row), "[]");
        assert_eq!(select("$[8:20]", row), "[8,9]");
    }

    #[test]
    fn missing_definite_paths_fail() {
        let doc = Json::parse(br#"{"a": 1}"#).unwrap();
        let err = JsonPath::parse("$.nope")
            .unwrap()
            .select(&doc)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        let err = JsonPath::parse("$[5]")
            .unwrap()
            .select(&Json::parse(b"[1]").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn unsupported_forms_are_refused() {
        let err = JsonPath::parse("$[0:2,246:]").unwrap_err().to_string();
        assert!(err.contains("only single range filters"), "{err}");
        assert!(JsonPath::parse("features").is_err());
        assert!(JsonPath::parse("$['a','b'].c").is_err());
        assert!(JsonPath::parse("$[x]").is_err());
        assert!(JsonPath::parse("$[1").is_err());
    }
}
