//! `authgate check`: offline validation of manifests, as a GitOps pipeline
//! runs it before anything reaches a cluster.
//!
//! It applies, in order: the CRD schema (typed decoding), the CRDs' CEL
//! rules (evaluated client-side), the semantic checks the controller makes,
//! and the one-provider-per-type rule across every file given. A Secret in
//! the `auth-credentials` (Foxglove) format is checked too (`check/secret.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::api::{AllowList, AuthPolicy, IdentityProvider, ProviderType};
use crate::contract::rules;
use crate::yaml_error;

mod revocation;
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
    /// File it was found in.
    pub file: PathBuf,
    /// `Kind namespace/name`, or the document index when unnamed.
    pub resource: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.resource, self.message)
    }
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
    let mut problems = Vec::new();
    let mut idps: Vec<Found<IdentityProvider>> = Vec::new();
    let mut policies: Vec<Found<AuthPolicy>> = Vec::new();
    let mut revocations = Vec::new();
    for file in files(paths)? {
        let text = std::fs::read_to_string(&file).map_err(|source| CheckError::Io { path: file.clone(), source })?;
        let docs: Vec<serde_json::Value> = match yaml_error::from_yaml_multiple(&text) {
            Ok(d) => d,
            Err(e) => {
                problems.push(Problem {
                    file: file.clone(),
                    resource: "-".into(),
                    message: format!("invalid YAML: {e}"),
                });
                continue;
            }
        };
        for (i, doc) in docs.into_iter().enumerate() {
            if secret::is_auth_credentials(&doc) {
                let resource = secret::label(&doc);
                for message in secret::problems(&doc) {
                    problems.push(Problem { file: file.clone(), resource: resource.clone(), message });
                }
                continue;
            }
            let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
            if !api_version.starts_with("authgate.dev/") {
                continue;
            }
            let kind = doc.get("kind").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let unnamed = format!("{kind} (document {})", i + 1);
            let mut push =
                |resource: String, message: String| problems.push(Problem { file: file.clone(), resource, message });
            if api_version != "authgate.dev/v1alpha1" {
                push(unnamed, format!("unknown apiVersion {api_version}; expected authgate.dev/v1alpha1"));
                continue;
            }
            match kind.as_str() {
                "IdentityProvider" => match decode_provider(&text, i, &doc) {
                    Ok(obj) => {
                        let name = label(&kind, &obj);
                        for m in cel_problems(obj.validate_cel()) {
                            push(name.clone(), m);
                        }
                        for m in rules::provider_problems(&obj.spec) {
                            push(name.clone(), m);
                        }
                        idps.push(Found { file: file.clone(), obj });
                    }
                    Err(e) => push(unnamed, e),
                },
                "AuthPolicy" => match decode_policy(&text, i, &doc) {
                    Ok(obj) => {
                        let name = label(&kind, &obj);
                        for m in cel_problems(obj.validate_cel()) {
                            push(name.clone(), m);
                        }
                        for m in rules::policy_problems(&obj.spec) {
                            push(name.clone(), m);
                        }
                        policies.push(Found { file: file.clone(), obj });
                    }
                    Err(e) => push(unnamed, e),
                },
                "SessionRevocation" => match revocation::decode_revocation(&text, i, &doc) {
                    Ok(obj) => {
                        let name = label(&kind, &obj);
                        for m in revocation::problems(&obj) {
                            push(name.clone(), m);
                        }
                        revocations.push(Found { file: file.clone(), obj });
                    }
                    Err(e) => push(unnamed, e),
                },
                other => push(unnamed, format!("unknown kind {other:?}")),
            }
        }
    }
    problems.extend(cross_checks(&idps, &policies));
    problems.extend(revocation::missing_policies(&revocations, &policies));
    Ok(problems)
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
            Some(winner) => problems.push(Problem {
                file: f.file.clone(),
                resource: label("IdentityProvider", &f.obj),
                message: format!(
                    "DuplicateType: {} is also a {} provider in namespace {} ({}); only one provider per type is active per namespace",
                    winner.obj.name_any(),
                    key.1,
                    key.0,
                    winner.file.display()
                ),
            }),
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
                None => problems.push(Problem {
                    file: f.file.clone(),
                    resource: label("AuthPolicy", &f.obj),
                    message: format!("provider {wanted:?} is not defined in namespace {ns} in the checked files"),
                }),
            }
        }
        if let Some(m) = rules::unrestricted_public_provider(&f.obj.spec, named) {
            problems.push(Problem {
                file: f.file.clone(),
                resource: label("AuthPolicy", &f.obj),
                message: format!("NoAccessRestriction: {m}"),
            });
        }
    }
    problems
}

/// Convenience for one path.
pub fn check_path(path: &Path) -> Result<Vec<Problem>, CheckError> {
    check(&[path.to_path_buf()])
}
