//! `authgate`: one binary, one subcommand per role.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};

use authgate::controller::children::pod_defaults::PodDefaults;
use authgate::controller::{self, Settings, health, leader, metrics::Metrics};
use authgate::{check, cli, crd, gateway, revoke, telemetry};

#[derive(Parser, Debug)]
#[command(name = "authgate", version, about = "Single sign-on in front of internal services, as a Kubernetes operator")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "AUTHGATE_LOG_FORMAT", default_value = "json", value_parser = ["json", "text"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the operator.
    Controller(Box<ControllerArgs>),
    /// Run one gateway.
    Gateway(gateway::GatewayArgs),
    /// Print the CRDs, or write them into a directory.
    Crd {
        /// Write one file per CRD into this directory instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write one Helm template per CRD into this directory (the chart's
        /// templates/crds: behind `crds.enabled`, with `crds.keep`).
        #[arg(long, conflicts_with_all = ["out", "reference"])]
        chart_templates: Option<PathBuf>,
        /// Print the Markdown field reference instead.
        #[arg(long, conflicts_with = "out")]
        reference: bool,
    },
    /// Validate manifests offline: schema, CEL rules, semantics, one provider per type.
    #[command(
        after_help = "Exit codes:\n  0  no errors (warnings may have been printed)\n  1  problems found that the apiserver or the controller would refuse\n  2  the input could not be read"
    )]
    Check(CheckArgs),
    /// End sessions: one user's (a SessionRevocation), or everyone's on a policy (--all).
    Revoke(revoke::RevokeArgs),
    /// Sign in to a gateway from the command line (device flow) and keep its token.
    Login(cli::LoginArgs),
    /// Print the stored token for a gateway (fails when there is none or it expired).
    Token(cli::UrlArgs),
    /// Forget the stored token for a gateway.
    Logout(cli::UrlArgs),
}

/// `authgate check`: validate manifests offline.
#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Files or directories of YAML manifests; `-` reads standard input
    /// (`kustomize build | authgate check -f -`).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    paths: Vec<PathBuf>,
    /// Namespace of manifests that name none (as `kubectl apply -n`).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Report references to objects outside the checked files (a policy's
    /// provider, a revocation's policy) as warnings, not errors.
    #[arg(long)]
    allow_missing_refs: bool,
    /// How to print the result.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: check::output::Format,
}

#[derive(clap::Args, Debug)]
struct ControllerArgs {
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "AUTHGATE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Address of /loglevel (GET reads the log filter, PUT sets one such as
    /// `debug`). It has no authentication, so it must be a loopback address;
    /// anything else is refused at startup. Reach it from outside the pod
    /// with `kubectl port-forward <pod> 8081` and
    /// `curl -X PUT --data debug http://127.0.0.1:8081/loglevel`, or from
    /// inside it with `kubectl exec`.
    #[arg(long, env = "AUTHGATE_ADMIN_ADDR", default_value = "127.0.0.1:8081")]
    admin_addr: SocketAddr,
    /// Gateway image used when a policy sets none.
    #[arg(long, env = "AUTHGATE_GATEWAY_IMAGE", default_value = concat!("authgate:", env!("CARGO_PKG_VERSION")))]
    gateway_image: String,
    /// Pull policy of the gateway image.
    #[arg(long, env = "AUTHGATE_GATEWAY_IMAGE_PULL_POLICY")]
    gateway_image_pull_policy: Option<String>,
    /// Images a policy may choose with `spec.gateway.image`, besides the
    /// default one (comma-separated, exact references). Empty: none, so a
    /// tenant who may write AuthPolicies cannot make the controller run an
    /// image of their choosing next to the policy's credentials.
    #[arg(long, env = "AUTHGATE_GATEWAY_ALLOWED_IMAGES", value_delimiter = ',')]
    gateway_allowed_images: Vec<String>,
    /// Gateway replicas when a policy sets none.
    #[arg(long, env = "AUTHGATE_GATEWAY_REPLICAS", default_value_t = 1)]
    gateway_replicas: i32,
    /// What the platform decides about every gateway pod, as JSON:
    /// `imagePullSecrets`, `resources`, `priorityClassName`, `podLabels`,
    /// `podAnnotations`, `spreadAcrossNodes`.
    #[arg(long, env = "AUTHGATE_GATEWAY_POD_DEFAULTS", default_value = "")]
    gateway_pod_defaults: String,
    /// Watch and reconcile only this namespace (default: all namespaces).
    #[arg(long, env = "AUTHGATE_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Elect a leader on a Lease, so replicas can run side by side.
    #[arg(long, env = "AUTHGATE_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "AUTHGATE_LEASE_NAME", default_value = "authgate-controller")]
    lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Seconds a Lease stays valid without renewal.
    #[arg(long, env = "AUTHGATE_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
    /// Seconds between resyncs of unchanged resources.
    #[arg(long, env = "AUTHGATE_RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::install_crypto_provider();
    match cli.command {
        Command::Crd { reference: true, .. } => {
            print!("{}", crd::reference_markdown());
            ExitCode::SUCCESS
        }
        Command::Crd { chart_templates: Some(dir), .. } => match crd::write_templates(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Command::Crd { out: Some(dir), .. } => match crd::write_all(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Command::Crd { out: None, .. } => {
            print!("{}", crd::render_all());
            ExitCode::SUCCESS
        }
        Command::Check(args) => run_check(&args),
        Command::Login(args) => match cli::login::login(&args).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Token(args) => match cli::token(&args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Logout(args) => match cli::logout(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("no stored token for {}", args.url);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Revoke(args) => match revoke::run(args).await {
            Ok(done) => {
                println!("{done}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Gateway(args) => {
            telemetry::init("info", cli.log_format == "json");
            match gateway::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "gateway failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Controller(args) => {
            let log = telemetry::init("info,kube=warn", cli.log_format == "json");
            match run_controller(*args, log).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "controller failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run_check(args: &CheckArgs) -> ExitCode {
    let options = check::Options {
        namespace: args.namespace.clone(),
        missing_refs: if args.allow_missing_refs { check::MissingRefs::Warn } else { check::MissingRefs::Error },
    };
    match check::check_with(&args.paths, &options) {
        Ok(problems) => {
            print!("{}", check::output::render(&problems, args.output));
            let errors = check::output::errors(&problems);
            if args.output == check::output::Format::Text && !problems.is_empty() {
                eprintln!("{errors} error(s), {} warning(s)", problems.len() - errors);
            }
            if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_controller(args: ControllerArgs, log: telemetry::LogLevelHandle) -> anyhow::Result<()> {
    // Checked first, so a bad setting stops the process before it does
    // anything.
    let gateway_pod = PodDefaults::parse(&args.gateway_pod_defaults).map_err(anyhow::Error::msg)?;
    let listeners = health::Listeners::bind(args.metrics_addr, args.admin_addr).await?;
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let state = health::HealthState { metrics: metrics.clone(), ready: ready.clone(), log };
    tokio::spawn(async move {
        if let Err(e) = health::serve(listeners, state).await {
            tracing::error!(error = %e, "health server failed");
            std::process::exit(1);
        }
    });
    let settings = Settings {
        gateway_image: args.gateway_image,
        gateway_image_pull_policy: args.gateway_image_pull_policy,
        gateway_allowed_images: args.gateway_allowed_images.into_iter().filter(|i| !i.is_empty()).collect(),
        gateway_replicas: args.gateway_replicas,
        gateway_pod,
        resync: Duration::from_secs(args.resync_seconds.max(1)),
        discovery_timeout: Duration::from_secs(10),
        watch_namespace: args.watch_namespace,
    };
    ready.store(true, Ordering::Relaxed);
    if !args.leader_election {
        metrics.leader.set(1);
        controller::run(client, settings, metrics, telemetry::shutdown_signal()).await;
        return Ok(());
    }
    let lease = leader::LeaseSettings {
        name: args.lease_name,
        namespace: args.lease_namespace,
        identity: std::env::var("POD_NAME").unwrap_or_else(|_| format!("authgate-{:08x}", rand_id())),
        duration: Duration::from_secs(args.lease_seconds),
    };
    let mut leadership = tokio::select! {
        l = leader::acquire(client.clone(), &lease) => l?,
        () = telemetry::shutdown_signal() => return Ok(()),
    };
    metrics.leader.set(1);
    let (lost_tx, mut lost_rx) = tokio::sync::oneshot::channel();
    let stop = async move {
        tokio::select! {
            () = telemetry::shutdown_signal() => {},
            () = leadership.lost() => { let _ = lost_tx.send(()); },
        }
        // Dropping leadership releases the Lease for the next replica.
        drop(leadership);
    };
    controller::run(client, settings, metrics, stop).await;
    if lost_rx.try_recv().is_ok() {
        anyhow::bail!("lost leadership of Lease {}; exiting so a fresh replica can take over", lease.name);
    }
    Ok(())
}

fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or(0)
}
