//! `authgate check`: offline validation of manifests, as a GitOps pipeline
//! runs it before anything reaches a cluster.
//!
//! It applies, in order: the CRDs' structural schema as strictly as the
//! apiserver with strict field validation (`check/schema.rs`: types, enums,
//! ranges, lengths, counts, patterns, unknown fields), the CRDs' CEL rules
//! (evaluated client-side), the semantic checks the controller makes, and
//! the one-provider-per-type rule across every file given, and for
//! ApiTokens their lifetime, policy and scopes (`check/api_token.rs`). A Secret in the
//! `auth-credentials` (Foxglove) format is checked too (`check/secret.rs`).
//! References to objects outside the checked files are errors, or warnings
//! with [`Options::missing_refs`]. `check/output.rs` renders the result as
//! text, JSON or JUnit.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::api::{AllowList, ApiToken, AuthPolicy, IdentityProvider, ProviderType};
use crate::contract::rules;
use crate::yaml_error;

mod api_token;
pub mod output;
mod revocation;
pub mod schema;
mod secret;

/// Failures to read input, as opposed to problems found in it.
#[derive(Debug, Error)]
pub enum CheckError {
    /// A path could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory given.
        path: PathBuf,
        /// The I/O error reading it.
        source: std::io::Error,
    },
}

/// One problem in one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File it was found in (`-` for standard input).
    pub file: PathBuf,
    /// `Kind namespace/name`, or the document index when unnamed.
    pub resource: String,
    /// What is wrong, for a person.
    pub message: String,
    /// Whether it fails the check.
    pub severity: Severity,
}

/// How much a problem counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    /// The apiserver or the controller would refuse it: the check fails.
    #[default]
    Error,
    /// Worth saying, not failing for (a reference outside the checked
    /// files, with [`MissingRefs::Warn`]).
    Warning,
}

impl Problem {
    fn error(file: &Path, resource: String, message: String) -> Self {
        Self { file: file.to_path_buf(), resource, message, severity: Severity::Error }
    }

    /// A reference to an object that is not among the checked files.
    /// Said with the reason `MissingReference`, which
    /// [`MissingRefs::Warn`] turns into a warning.
    fn missing_reference(file: &Path, resource: String, message: String) -> Self {
        Self::error(file, resource, format!("{MISSING_REFERENCE}: {message}"))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let warning = if self.severity == Severity::Warning { "warning: " } else { "" };
        write!(f, "{}: {}: {warning}{}", self.file.display(), self.resource, self.message)
    }
}

/// Reason of a reference to an object outside the checked files.
pub const MISSING_REFERENCE: &str = "MissingReference";

/// How `check` reads its input.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Namespace of documents that name none (`--namespace`); `default`
    /// otherwise, as kubectl applies them.
    pub namespace: Option<String>,
    /// What a reference to an object outside the checked files is.
    pub missing_refs: MissingRefs,
}

/// What a reference to an object outside the checked files is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingRefs {
    /// An error (the default: the set is expected to be complete).
    #[default]
    Error,
    /// A warning, for checking part of what a cluster holds.
    Warn,
}

struct Found<T> {
    file: PathBuf,
    obj: T,
}

fn label<K: ResourceExt>(kind: &str, obj: &K) -> String {
    format!("{kind} {}/{}", obj.namespace().unwrap_or_else(|| "default".into()), obj.name_any())
}

/// Every YAML file under the given paths, sorted.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CheckError> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|source| CheckError::Io { path: p.clone(), source })?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|source| CheckError::Io { path: p.clone(), source })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            let nested: Vec<PathBuf> = entries
                .into_iter()
                .filter(|e| e.is_dir() || e.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            out.extend(files(&nested)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Decodes document `index` of `text`. Errors name the line, column and
/// field, never a value from the file.
fn decode<T: DeserializeOwned>(text: &str, index: usize, doc: &serde_json::Value) -> Result<T, String> {
    yaml_error::from_json_value(doc.clone()).map_err(|e| {
        // The decode of the JSON value knows the field but not the line.
        let e = yaml_error::locate_in_multiple::<T>(text, index, e);
        format!("does not match the schema: {e}")
    })
}

/// The allow-list of an IdentityProvider's `spec`, decoded alone. The spec
/// embeds it flattened, and a flattened field's decode error loses its
/// path and position, so it is checked on its own first.
#[derive(serde::Deserialize)]
struct ProviderAllowList {
    #[serde(default)]
    #[allow(dead_code)]
    spec: AllowList,
}

/// The allow-list of an AuthPolicy's `spec.access`, decoded alone (see
/// [`ProviderAllowList`]).
#[derive(serde::Deserialize)]
struct PolicyAllowList {
    #[serde(default)]
    #[allow(dead_code)]
    spec: PolicyAccess,
}

#[derive(serde::Deserialize, Default)]
struct PolicyAccess {
    #[serde(default)]
    #[allow(dead_code)]
    access: AllowList,
}

/// Decodes an IdentityProvider, its flattened allow-list first.
fn decode_provider(text: &str, index: usize, doc: &serde_json::Value) -> Result<IdentityProvider, String> {
    decode::<ProviderAllowList>(text, index, doc)?;
    decode(text, index, doc)
}

/// Decodes an AuthPolicy, its flattened allow-list first.
fn decode_policy(text: &str, index: usize, doc: &serde_json::Value) -> Result<AuthPolicy, String> {
    decode::<PolicyAllowList>(text, index, doc)?;
    decode(text, index, doc)
}

/// Checks every manifest under `paths`. Documents that are neither
/// authgate resources nor `auth-credentials` Secrets are ignored.
pub fn check(paths: &[PathBuf]) -> Result<Vec<Problem>, CheckError> {
    check_with(paths, &Options::default())
}

/// Reads `file`, or standard input for `-`.
fn read(file: &Path) -> Result<String, CheckError> {
    let io = |source| CheckError::Io { path: file.to_path_buf(), source };
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(io)?;
        return Ok(text);
    }
    std::fs::read_to_string(file).map_err(io)
}

/// Gives a document without a namespace the one it would be applied in.
fn default_namespace(doc: &mut serde_json::Value, namespace: &str) {
    if let Some(meta) = doc.get_mut("metadata").and_then(serde_json::Value::as_object_mut)
        && !meta.contains_key("namespace")
    {
        meta.insert("namespace".into(), namespace.into());
    }
}

/// [`check`] with `options`: `-` among `paths` reads standard input.
pub fn check_with(paths: &[PathBuf], options: &Options) -> Result<Vec<Problem>, CheckError> {
    let mut problems = Vec::new();
    let mut idps: Vec<Found<IdentityProvider>> = Vec::new();
    let mut policies: Vec<Found<AuthPolicy>> = Vec::new();
    let mut revocations = Vec::new();
    let mut tokens: Vec<Found<ApiToken>> = Vec::new();
    for file in files(paths)? {
        let text = read(&file)?;
        let docs: Vec<serde_json::Value> = match yaml_error::from_yaml_multiple(&text) {
            Ok(d) => d,
            Err(e) => {
                problems.push(Problem::error(&file, "-".into(), format!("invalid YAML: {e}")));
                continue;
            }
        };
        for (i, mut doc) in docs.into_iter().enumerate() {
            default_namespace(&mut doc, options.namespace.as_deref().unwrap_or("default"));
            if secret::is_auth_credentials(&doc) {
                let resource = secret::label(&doc);
                for message in secret::problems(&doc) {
                    problems.push(Problem::error(&file, resource.clone(), message));
                }
                continue;
            }
            let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
            if !api_version.starts_with("authgate.dev/") {
                continue;
            }
            let kind = doc.get("kind").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let unnamed = format!("{kind} (document {})", i + 1);
            let structural = schema::problems(&kind, &doc);
            let unnamed = match doc.pointer("/metadata/name").and_then(|n| n.as_str()) {
                Some(name) if !structural.is_empty() => format!(
                    "{kind} {}/{name}",
                    doc.pointer("/metadata/namespace").and_then(|n| n.as_str()).unwrap_or("default")
                ),
                _ => unnamed,
            };
            let mut push = |resource: String, message: String| problems.push(Problem::error(&file, resource, message));
            if api_version != "authgate.dev/v1alpha1" {
                push(unnamed, format!("unknown apiVersion {api_version}; expected authgate.dev/v1alpha1"));
                continue;
            }
            let decoded = match kind.as_str() {
                "IdentityProvider" => decode_provider(&text, i, &doc).map(|obj| {
                    let name = label(&kind, &obj);
                    cel_problems(obj.validate_cel())
                        .into_iter()
                        .chain(rules::provider_problems(&obj.spec))
                        .for_each(|m| push(name.clone(), m));
                    idps.push(Found { file: file.clone(), obj });
                }),
                "AuthPolicy" => decode_policy(&text, i, &doc).map(|obj| {
                    let name = label(&kind, &obj);
                    cel_problems(obj.validate_cel())
                        .into_iter()
                        .chain(rules::policy_problems(&obj.spec))
                        .for_each(|m| push(name.clone(), m));
                    policies.push(Found { file: file.clone(), obj });
                }),
                "SessionRevocation" => revocation::decode_revocation(&text, i, &doc).map(|obj| {
                    let name = label(&kind, &obj);
                    revocation::problems(&obj).into_iter().for_each(|m| push(name.clone(), m));
                    revocations.push(Found { file: file.clone(), obj });
                }),
                "ApiToken" => decode::<ApiToken>(&text, i, &doc).map(|obj| {
                    let name = label(&kind, &obj);
                    api_token::problems(&obj).into_iter().for_each(|m| push(name.clone(), m));
                    tokens.push(Found { file: file.clone(), obj });
                }),
                other => {
                    push(unnamed, format!("unknown kind {other:?}"));
                    continue;
                }
            };
            // The typed decode's error names the line; the schema's
            // findings name every other problem, less the one the decode
            // already reported.
            let decode_error = decoded.err();
            if let Some(e) = &decode_error {
                push(unnamed.clone(), e.clone());
            }
            for m in structural.into_iter().filter(|m| !decode_error.as_ref().is_some_and(|e| said_by(e, m))) {
                push(unnamed.clone(), m);
            }
        }
    }
    problems.extend(cross_checks(&idps, &policies));
    problems.extend(revocation::missing_policies(&revocations, &policies));
    problems.extend(api_token::cross_checks(&tokens, &policies));
    if options.missing_refs == MissingRefs::Warn {
        for p in &mut problems {
            if p.message.starts_with(MISSING_REFERENCE) {
                p.severity = Severity::Warning;
            }
        }
    }
    Ok(problems)
}

/// Whether the typed decode's error `decoded` already says what the
/// schema's finding `found` says (the same field, or the same unknown
/// field).
fn said_by(decoded: &str, found: &str) -> bool {
    if let Some(unknown) = found.strip_prefix("unknown field ") {
        let last = unknown.trim_matches('"').rsplit('.').next().unwrap_or_default();
        return decoded.contains(&format!("unknown field `{last}`"));
    }
    let field = found.split(": ").next().unwrap_or_default();
    decoded.contains(&format!("field {field}: "))
}

fn cel_problems<E: fmt::Display>(result: Result<(), E>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(e) => e.to_string().lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned()).collect(),
    }
}

fn ns_of<K: ResourceExt>(obj: &K) -> String {
    obj.namespace().unwrap_or_else(|| "default".into())
}

/// One provider per type per namespace, and policy-level checks that need
/// the providers.
fn cross_checks(idps: &[Found<IdentityProvider>], policies: &[Found<AuthPolicy>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut first: BTreeMap<(String, ProviderType), &Found<IdentityProvider>> = BTreeMap::new();
    for f in idps {
        let key = (ns_of(&f.obj), f.obj.spec.provider_type);
        match first.get(&key) {
            Some(winner) => problems.push(Problem::error(
                &f.file,
                label("IdentityProvider", &f.obj),
                format!(
                    "DuplicateType: {} is also a {} provider in namespace {} ({}); only one provider per type is active per namespace",
                    winner.obj.name_any(),
                    key.1,
                    key.0,
                    winner.file.display()
                ),
            )),
            None => {
                first.insert(key, f);
            }
        }
    }
    for f in policies {
        let ns = ns_of(&f.obj);
        let mut named = Vec::new();
        for wanted in &f.obj.spec.providers {
            match idps.iter().find(|i| ns_of(&i.obj) == ns && &i.obj.name_any() == wanted) {
                Some(i) => named.push((i.obj.name_any(), &i.obj.spec)),
                None => problems.push(Problem::missing_reference(
                    &f.file,
                    label("AuthPolicy", &f.obj),
                    format!("provider {wanted:?} is not defined in namespace {ns} in the checked files"),
                )),
            }
        }
        if let Some(m) = rules::unrestricted_public_provider(&f.obj.spec, named) {
            problems.push(Problem::error(&f.file, label("AuthPolicy", &f.obj), format!("NoAccessRestriction: {m}")));
        }
    }
    problems
}

/// Convenience for one path.
pub fn check_path(path: &Path) -> Result<Vec<Problem>, CheckError> {
    check(&[path.to_path_buf()])
}
