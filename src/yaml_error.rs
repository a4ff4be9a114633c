//! Parse errors of config files and manifests that are safe to show.
//!
//! A gateway config holds client secrets and cookie keys, and a manifest
//! may hold secret-looking strings. The YAML library renders errors with a
//! snippet of the surrounding source, and serde's messages embed the value
//! they refused (`invalid type: string "hunter2", expected u64`). Neither
//! may reach a log or a CI transcript, so every error shown to a user goes
//! through [`ParseError`]: the line, the column, the field path when known,
//! and a message with the values taken out. Schema names (`unknown field
//! `sesion``, `missing field `keys``, `expected one of `a`, `b``) stay.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_path_to_error::{Path, Segment, Track};

/// A parse or decode error with no value from the source in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    line: Option<u64>,
    column: Option<u64>,
    field: Option<String>,
    message: String,
}

impl ParseError {
    /// 1-based line, when known.
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// 1-based column, when known.
    pub fn column(&self) -> Option<u64> {
        self.column
    }

    /// Field path such as `session.keys[0]`, when known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong, without the location and without values.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// From a YAML error, with the field path tracked while decoding.
    pub fn from_yaml(err: &serde_saphyr::Error, path: Option<&Path>) -> Self {
        let err = innermost(err);
        let location = err.location().filter(|l| l.line() > 0);
        let mut field = path.and_then(field_path);
        let message = match err {
            serde_saphyr::Error::SerdeUnknownField { field: name, expected, .. } => {
                // The path ends with the unknown key itself; name its parent.
                if let Some(p) = &field
                    && let Some(parent) = p.strip_suffix(name.as_str())
                {
                    let parent = parent.trim_end_matches('.');
                    field = (!parent.is_empty()).then(|| parent.to_owned());
                }
                unknown_field(name, expected)
            }
            serde_saphyr::Error::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
            serde_saphyr::Error::SerdeUnknownVariant { expected, .. } => {
                format!("unknown variant, {}", one_of(expected, "there are no variants"))
            }
            serde_saphyr::Error::SerdeInvalidType { expected, .. } => {
                format!("invalid type, expected {}", scrub(expected))
            }
            serde_saphyr::Error::SerdeInvalidValue { expected, .. } => {
                format!("invalid value, expected {}", scrub(expected))
            }
            serde_saphyr::Error::SerdeInvalidLength { len, expected, .. } => {
                format!("invalid length {len}, expected {}", scrub(expected))
            }
            serde_saphyr::Error::DuplicateMappingKey { key, .. } => match key.as_deref().filter(|k| is_name(k)) {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_owned(),
            },
            serde_saphyr::Error::NonFiniteFloat { .. } => "value is not a finite number".to_owned(),
            serde_saphyr::Error::QuotingRequired { .. } => "value requires quoting".to_owned(),
            serde_saphyr::Error::TaggedEnumMismatch { target, .. } => format!("tag does not match {target}"),
            other => {
                use serde_saphyr::MessageFormatter as _;
                scrub(&serde_saphyr::UserMessageFormatter.format_message(other))
            }
        };
        Self { line: location.map(|l| l.line()), column: location.map(|l| l.column()), field, message }
    }

    /// From a JSON error (parsing text or decoding a `serde_json::Value`).
    pub fn from_json(err: &serde_json::Error, path: Option<&Path>) -> Self {
        let text = err.to_string();
        let known = err.line() > 0;
        // serde_json appends " at line L column C" when it knows them.
        let text = match text.rfind(" at line ") {
            Some(i) if known => &text[..i],
            _ => text.as_str(),
        };
        let mut field = path.and_then(field_path);
        if let Some(name) = unknown_field_name(text)
            && let Some(p) = &field
            && let Some(parent) = p.strip_suffix(name)
        {
            let parent = parent.trim_end_matches('.');
            field = (!parent.is_empty()).then(|| parent.to_owned());
        }
        Self {
            line: known.then(|| err.line() as u64),
            column: known.then(|| err.column() as u64),
            field,
            message: scrub(text),
        }
    }

    /// This error at the line and column of `other`, the same problem found
    /// by a located decode. If that decode stopped at another problem first
    /// (a JSON object's keys are sorted, the file's are not), that one is
    /// reported instead: it is real too, and it has a place in the file.
    fn located_at(self, other: ParseError) -> Self {
        match other.line {
            Some(_) if self.field == other.field => Self { line: other.line, column: other.column, ..self },
            Some(_) => other,
            None => self,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(line) = self.line {
            parts.push(format!("line {line}"));
        }
        if let Some(column) = self.column {
            parts.push(format!("column {column}"));
        }
        if let Some(field) = &self.field {
            parts.push(format!("field {field}"));
        }
        if parts.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", parts.join(", "), self.message) }
    }
}

impl std::error::Error for ParseError {}

/// Decodes one YAML document, tracking the field path for errors.
pub fn from_yaml_str<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let mut track = Track::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        T::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    });
    result.map_err(|e| ParseError::from_yaml(&e, Some(&track.path())))
}

/// Decodes every document of a YAML stream (empty documents skipped).
pub fn from_yaml_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, ParseError> {
    serde_saphyr::from_multiple(text).map_err(|e| ParseError::from_yaml(&e, None))
}

/// Decodes a JSON value (such as one document of [`from_yaml_multiple`]
/// into `serde_json::Value`), tracking the field path for errors.
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| ParseError::from_json(e.inner(), Some(e.path())))
}

/// Decodes document `index` of `text` (counted as [`from_yaml_multiple`]
/// counts) as `T`, as a decode of its `serde_json::Value` that failed with
/// `err`; returns `err` with the line and column of the problem in `text`
/// when the direct decode finds it too.
pub fn locate_in_multiple<T: DeserializeOwned>(text: &str, index: usize, err: ParseError) -> ParseError {
    PROBE.with(|p| {
        p.target.set(index);
        p.seen.set(0);
        p.path.replace(None);
    });
    let result = serde_saphyr::from_multiple::<Probe<T>>(text);
    let path = PROBE.with(|p| p.path.take());
    match result {
        Err(e) if path.is_some() => err.located_at(ParseError::from_yaml(&e, path.as_ref())),
        _ => err,
    }
}

struct ProbeState {
    target: Cell<usize>,
    seen: Cell<usize>,
    path: RefCell<Option<Path>>,
}

thread_local! {
    static PROBE: ProbeState =
        const { ProbeState { target: Cell::new(0), seen: Cell::new(0), path: RefCell::new(None) } };
}

/// One document of [`locate_in_multiple`]: decoded as `T` if it is the
/// target, skipped otherwise.
struct Probe<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Probe<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let (seen, target) = PROBE.with(|p| (p.seen.replace(p.seen.get() + 1), p.target.get()));
        if seen != target {
            IgnoredAny::deserialize(de)?;
            return Ok(Self(PhantomData));
        }
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(_) => Ok(Self(PhantomData)),
            Err(e) => {
                PROBE.with(|p| p.path.replace(Some(e.path().clone())));
                Err(e.into_inner())
            }
        }
    }
}

/// The innermost error: no snippet, no alias wrapper.
fn innermost(err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    match err.without_snippet() {
        serde_saphyr::Error::AliasError { error, .. } => innermost(error),
        other => other,
    }
}

/// `a.b[0].c`, or `None` for the root. Keys that do not look like names
/// (map keys are data too) are shown as `*`.
fn field_path(path: &Path) -> Option<String> {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if is_name(key) { key } else { "*" });
            }
            Segment::Unknown => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `s` looks like a field name rather than a value: short, and only
/// letters, digits and `_-./$@`.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-./$@".contains(c))
}

fn one_of(expected: &[&str], none: &str) -> String {
    match expected {
        [] => none.to_owned(),
        [one] => format!("expected `{one}`"),
        many => format!("expected one of {}", many.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")),
    }
}

fn unknown_field(name: &str, expected: &[&str]) -> String {
    let what = if is_name(name) { format!("unknown field `{name}`") } else { "unknown field".to_owned() };
    format!("{what}, {}", one_of(expected, "there are no fields"))
}

/// The `x` of serde's "unknown field `x`", if it is one.
fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}

/// `message` with every value taken out: what serde's `invalid type:` /
/// `invalid value:` describe as the unexpected input, the variant of
/// `unknown variant`, and every quoted span, except the schema names of
/// `unknown field`, `missing field`, `duplicate field` and `expected`.
pub fn scrub(message: &str) -> String {
    let mut text = message.to_owned();
    // `invalid type: string "hunter2", expected u64` -> `invalid type, expected u64`
    for head in ["invalid type", "invalid value", "invalid length"] {
        let pattern = format!("{head}: ");
        while let Some(start) = text.find(&pattern) {
            let after = start + pattern.len();
            let end = find_unquoted(&text[after..], ", expected").map_or(text.len(), |i| after + i);
            text.replace_range(start + head.len()..end, "");
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    // Whether the last kept span began a list of expected names.
    let mut in_list = false;
    while let Some((i, quote)) = rest.char_indices().find(|&(i, c)| is_quote_start(rest, i, c)) {
        let before = &rest[..i];
        let body = &rest[i + 1..];
        let Some(len) = closing(body, quote) else {
            // Unclosed: drop the remainder, it may be a value.
            out.push_str(before);
            rest = "";
            break;
        };
        let span = &rest[i..i + 1 + len + 1];
        let prefix = format!("{out}{before}");
        let keep = quote == '`'
            && is_name(&body[..len])
            && (["field", "expected", "one of"].iter().any(|w| prefix.trim_end().ends_with(w))
                || (in_list && (before == ", " || before == " or ")));
        in_list = keep;
        out.push_str(before);
        if keep {
            out.push_str(span);
        }
        rest = &rest[i + span.len()..];
    }
    out.push_str(rest);
    tidy(&out)
}

/// Byte offset of `pattern` in `text`, skipping quoted spans.
fn find_unquoted(text: &str, pattern: &str) -> Option<usize> {
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(pattern) {
            return Some(i);
        }
        let c = text[i..].chars().next()?;
        if is_quote_start(text, i, c) {
            i += c.len_utf8() + closing(&text[i + c.len_utf8()..], c)? + c.len_utf8();
        } else {
            i += c.len_utf8();
        }
    }
    None
}

/// Whether `c` at `i` opens a quoted span (an apostrophe inside a word
/// does not).
fn is_quote_start(text: &str, i: usize, c: char) -> bool {
    match c {
        '"' | '`' => true,
        '\'' => text[..i].chars().next_back().is_none_or(|p| !p.is_alphanumeric()),
        _ => false,
    }
}

/// Byte length of the quoted body up to its closing `quote`.
fn closing(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// Removes what taking spans out leaves behind: doubled blanks, blanks
/// before punctuation, dangling `:` and `,`, control characters.
fn tidy(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut out = s.split_whitespace().collect::<Vec<_>>().join(" ");
    for (from, to) in [(" ,", ","), (" :", ":"), (" )", ")"), ("()", ""), (",,", ","), (": ,", ","), (":,", ",")] {
        while out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out.trim_end_matches([' ', ':', ',']).trim().to_owned()
}

#[cfg(test)]
mod tests;
