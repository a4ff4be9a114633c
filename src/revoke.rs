//! `authgate revoke`: ends sessions from the command line, with the
//! caller's kubeconfig.
//!
//! - `--user`/`--email` creates a SessionRevocation (one user, without
//!   touching the policy, so GitOps never reverts it).
//! - `--all` sets the policy's `spec.session.notBefore` to now (everyone).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use thiserror::Error;

use crate::api::{AuthPolicy, SessionRevocation, SessionRevocationSpec};

/// Field manager of the CLI's writes, distinct from the controller's.
pub const FIELD_MANAGER: &str = "authgate-revoke";

/// `authgate revoke` arguments.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("who").required(true).multiple(true).args(["user", "email", "all"])),
    after_help = "Examples:\n  authgate revoke -n team-a --policy grafana --user alice\n  authgate revoke -n team-a --email bob@example.com          # every policy in team-a\n  authgate revoke -n team-a --policy grafana --all            # everyone\n\nA SessionRevocation is deleted by the controller once every session it could match has expired.\n--all changes the AuthPolicy itself (spec.session.notBefore): GitOps tools (Argo CD, Flux) will see this field change; add it to the policy in Git, or tell the tool to ignore it, or it may be reverted."
)]
pub struct RevokeArgs {
    /// Namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The AuthPolicy whose sessions end (default: every policy in the
    /// namespace; required with --all).
    #[arg(long)]
    pub policy: Option<String>,
    /// End this user's sessions (the forwarded user name, exactly).
    #[arg(long, conflicts_with = "all")]
    pub user: Option<String>,
    /// End the sessions of this verified email (any case).
    #[arg(long, conflicts_with = "all")]
    pub email: Option<String>,
    /// End every session of the policy: sets its spec.session.notBefore to
    /// now, a change to the AuthPolicy that GitOps tools will see.
    #[arg(long, requires = "policy")]
    pub all: bool,
    /// End sessions issued before this instant (RFC 3339, e.g.
    /// 2026-05-01T12:00:00Z) instead of before now.
    #[arg(long, conflicts_with = "all", value_parser = parse_instant)]
    pub before: Option<Timestamp>,
}

fn parse_instant(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| format!("not an RFC 3339 instant such as 2026-05-01T12:00:00Z: {e}"))
}

/// What can go wrong, for a person.
#[derive(Debug, Error)]
pub enum RevokeError {
    /// No kubeconfig or in-cluster config.
    #[error("cannot reach the cluster: {0}")]
    Connect(#[source] kube::Error),
    /// The named policy does not exist.
    #[error("AuthPolicy {policy:?} not found in namespace {namespace:?}")]
    PolicyNotFound {
        /// The policy named.
        policy: String,
        /// Where it was looked for.
        namespace: String,
    },
    /// RBAC refused the call.
    #[error("no permission to {action} in namespace {namespace:?}: {message}")]
    Forbidden {
        /// What was attempted.
        action: &'static str,
        /// Where.
        namespace: String,
        /// The apiserver's words.
        message: String,
    },
    /// Anything else the apiserver said.
    #[error("{action} in namespace {namespace:?} failed: {source}")]
    Api {
        /// What was attempted.
        action: &'static str,
        /// Where.
        namespace: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

/// The next whole second: Kubernetes times carry seconds, and a session
/// signed in earlier this second must end too.
fn now_rounded_up() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second() + 1).unwrap_or(now)
}

/// Runs `authgate revoke`, returning what to print on success.
pub async fn run(args: RevokeArgs) -> Result<String, RevokeError> {
    let client = Client::try_default().await.map_err(RevokeError::Connect)?;
    let namespace = args.namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let fail = |action: &'static str| {
        let namespace = namespace.clone();
        move |source: kube::Error| match source {
            kube::Error::Api(e) if e.code == 403 => RevokeError::Forbidden { action, namespace, message: e.message },
            source => RevokeError::Api { action, namespace, source },
        }
    };
    let policies: Api<AuthPolicy> = Api::namespaced(client.clone(), &namespace);
    if let Some(policy) = &args.policy {
        let found = policies.get_metadata_opt(policy).await.map_err(fail("read authpolicies"))?;
        if found.is_none() {
            return Err(RevokeError::PolicyNotFound { policy: policy.clone(), namespace });
        }
    }
    if args.all {
        let policy = args.policy.as_deref().unwrap_or_default();
        let not_before = Time(now_rounded_up());
        let patch = serde_json::json!({"spec": {"session": {"notBefore": not_before}}});
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        policies.patch(policy, &params, &Patch::Merge(&patch)).await.map_err(fail("patch authpolicies"))?;
        return Ok(format!(
            "authpolicy/{policy}: every session issued before {} ends (spec.session.notBefore)",
            not_before.0
        ));
    }
    let spec = SessionRevocationSpec {
        policy: args.policy,
        user: args.user,
        email: args.email,
        before: Some(Time(args.before.unwrap_or_else(now_rounded_up))),
    };
    let mut revocation = SessionRevocation::new("", spec);
    revocation.metadata.name = None;
    revocation.metadata.generate_name = Some("revoke-".into());
    let revocations: Api<SessionRevocation> = Api::namespaced(client, &namespace);
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
    let created = revocations.create(&params, &revocation).await.map_err(fail("create sessionrevocations"))?;
    Ok(created.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RevokeArgs,
    }

    fn parse(args: &[&str]) -> Result<RevokeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("revoke").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn who_is_required_and_all_excludes_a_user() {
        assert!(parse(&["--policy", "p"]).is_err(), "nobody named");
        assert!(parse(&["--policy", "p", "--all", "--user", "alice"]).is_err());
        assert!(parse(&["--all"]).is_err(), "--all needs --policy");
        let both = parse(&["--user", "alice", "--email", "a@example.com"]).unwrap();
        assert_eq!((both.user.as_deref(), both.email.as_deref()), (Some("alice"), Some("a@example.com")));
        assert!(parse(&["--policy", "p", "--all"]).unwrap().all);
    }

    #[test]
    fn before_is_rfc3339() {
        let a = parse(&["--user", "alice", "--before", "2026-05-01T12:00:00Z"]).unwrap();
        assert_eq!(a.before.unwrap().as_second(), 1_777_636_800);
        let err = parse(&["--user", "alice", "--before", "yesterday"]).unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
