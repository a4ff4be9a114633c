//! The OCI image `make image` builds (scripts/image.sh), as a runtime sees
//! it: its config read from the OCI layout, its root filesystem unpacked
//! with `umoci unpack --rootless`, and its entrypoint run from that root
//! (chroot, as the image's user), where there is no libc, no shell and no
//! /etc but what the image ships.
//!
//! The image is built before the tests (scripts/test.sh runs
//! scripts/image.sh); these tests never build it. Without umoci or the
//! image they skip, and under `CI=true` they fail.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pki::TestCa;
use common::tls_proxy::TlsProxy;
use common::{Echo, free_port, require};
use serde_json::Value;

const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The OCI layout scripts/image.sh writes (same default and variable).
fn layout() -> PathBuf {
    std::env::var_os("AUTHGATE_IMAGE_LAYOUT").map_or_else(|| repo().join("target/image/authgate-oci"), PathBuf::from)
}

/// The chart's appVersion: the image's tag.
fn app_version() -> String {
    let chart = std::fs::read_to_string(repo().join("charts/authgate/Chart.yaml")).unwrap();
    let line = chart.lines().find_map(|l| l.strip_prefix("appVersion:")).expect("appVersion in Chart.yaml");
    line.trim().trim_matches('"').to_owned()
}

/// Whether the image and umoci are there (see [`require`]).
fn available() -> bool {
    let umoci = Command::new("umoci").arg("--version").output().is_ok_and(|o| o.status.success());
    require("umoci (Debian package)", umoci)
        && require(
            &format!("the image at {} (`make image`)", layout().display()),
            layout().join("index.json").is_file(),
        )
}

fn blob(digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    std::fs::read(layout().join("blobs/sha256").join(hex)).unwrap()
}

/// The manifest tagged with the appVersion, and the image config it names.
fn manifest_and_config() -> (Value, Value) {
    let index: Value = serde_json::from_slice(&std::fs::read(layout().join("index.json")).unwrap()).unwrap();
    let tag = app_version();
    let descriptor = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .unwrap_or_else(|| panic!("no manifest tagged {tag} in {index}"));
    let manifest: Value = serde_json::from_slice(&blob(descriptor["digest"].as_str().unwrap())).unwrap();
    let config: Value = serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    (manifest, config)
}

/// `name` on this process's PATH (the child's environment is cleared, so
/// it cannot be looked up there).
fn which(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

/// The image unpacked into a fresh directory; removed on drop.
struct Unpacked {
    dir: tempfile::TempDir,
    config: Value,
}

impl Unpacked {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{}", layout().display(), app_version()))
            .arg(dir.path().join("bundle"))
            .output()
            .unwrap();
        assert!(out.status.success(), "umoci unpack: {}", String::from_utf8_lossy(&out.stderr));
        Self { dir, config: manifest_and_config().1 }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("bundle/rootfs")
    }

    /// The image's entrypoint with `args`, run from the root filesystem as
    /// the image's user with only the image's environment plus `env`.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let c = &self.config["config"];
        let entrypoint: Vec<&str> = c["Entrypoint"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
        let mut cmd = if root {
            let mut cmd = Command::new(which("chroot"));
            cmd.arg(format!("--userspec={}", c["User"].as_str().unwrap()));
            cmd
        } else {
            // Not root: a user namespace in which this user may chroot.
            let mut cmd = Command::new(which("unshare"));
            cmd.args(["--map-root-user", "chroot"]);
            cmd
        };
        cmd.arg(self.rootfs()).args(&entrypoint).args(args).env_clear();
        for kv in c["Env"].as_array().into_iter().flatten() {
            let (k, v) = kv.as_str().unwrap().split_once('=').unwrap();
            cmd.env(k, v);
        }
        cmd.envs(env.iter().copied());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args, &[]).output().unwrap();
        assert!(out.status.success(), "authgate {args:?}: {out:?}");
        out
    }
}

#[test]
fn the_config_names_the_entrypoint_the_user_and_the_labels() {
    if !available() {
        return;
    }
    let (manifest, config) = manifest_and_config();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1, "one layer: {manifest}");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/authgate"]));
    assert!(c["Cmd"].is_null(), "no default arguments: {c}");
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Env"], serde_json::json!(["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]));
    let labels = &c["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "authgate");
    assert_eq!(labels["org.opencontainers.image.version"], app_version().as_str());
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(labels["org.opencontainers.image.base.name"], "scratch");
    let revision = labels["org.opencontainers.image.revision"].as_str().unwrap();
    assert!(revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()), "{revision}");
    assert!(labels["org.opencontainers.image.created"].as_str().is_some_and(|s| s.ends_with('Z')), "{labels}");
}

#[test]
fn the_rootfs_holds_the_static_binary_the_ca_bundle_and_a_passwd_only() {
    if !available() {
        return;
    }
    let image = Unpacked::new();
    let root = image.rootfs();
    let mut paths = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            paths.insert(path.strip_prefix(&root).unwrap().display().to_string());
        }
    }
    let want: BTreeSet<String> =
        ["authgate", "etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", CA_BUNDLE].map(String::from).into();
    assert_eq!(paths, want, "no shell, no libc, nothing else");

    // Static: no program interpreter (PT_INTERP) to load, so no ld.so needed.
    let elf = std::fs::read(root.join("authgate")).unwrap();
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let types: Vec<u32> =
        (0..phnum).map(|i| u32::from_le_bytes(elf[phoff + i * phentsize..][..4].try_into().unwrap())).collect();
    assert!(types.contains(&1), "has PT_LOAD segments: {types:?}");
    assert!(!types.contains(&3), "PT_INTERP: dynamically linked");

    // Debian's bundle: well over a hundred roots, every one parseable.
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(root.join(CA_BUNDLE)).unwrap();
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
    assert!(certs.expect("the bundle parses").len() > 100);
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("nonroot:x:65532:65532:")), "{passwd}");
}

#[test]
fn the_entrypoint_prints_its_version_the_crds_and_the_gateways_help() {
    if !available() {
        return;
    }
    let image = Unpacked::new();
    let version = String::from_utf8(image.run(&["--version"]).stdout).unwrap();
    assert_eq!(version.trim(), format!("authgate {}", env!("CARGO_PKG_VERSION")));

    let printed = String::from_utf8(image.run(&["crd"]).stdout).unwrap();
    let on_disk: Vec<String> = authgate::crd::all()
        .iter()
        .map(|(name, _)| std::fs::read_to_string(repo().join("crds").join(name)).unwrap())
        .collect();
    assert!(printed == on_disk.join("---\n"), "`authgate crd` from the image differs from crds/: rebuild it");

    let help = String::from_utf8(image.run(&["gateway", "--help"]).stdout).unwrap();
    for flag in ["--config", "--listen", "--ops-listen", "--upstream"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// `authgate gateway` from the image, without sign-in, in front of
/// `upstream`; killed on drop.
struct ImageGateway {
    child: Child,
    base: String,
    log: PathBuf,
}

impl ImageGateway {
    async fn start(image: &Unpacked, upstream: &str) -> Self {
        let (port, ops) = (free_port(), free_port());
        let base = format!("http://127.0.0.1:{port}");
        let log = image.dir.path().join(format!("gateway-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let listen = format!("127.0.0.1:{port}");
        let ops_listen = format!("127.0.0.1:{ops}");
        let env = [
            ("AUTHGATE_AUTHENTICATION", "Disabled"),
            ("AUTHGATE_UPSTREAM", upstream),
            ("AUTHGATE_EXTERNAL_URL", base.as_str()),
            ("AUTHGATE_LISTEN", listen.as_str()),
            ("AUTHGATE_OPS_LISTEN", ops_listen.as_str()),
            ("AUTHGATE_LOG_FORMAT", "text"),
        ];
        let child = image
            .command(&["gateway"], &env)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut gw = Self { child, base, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        let healthz = format!("http://127.0.0.1:{ops}/healthz");
        loop {
            if let Some(status) = gw.child.try_wait().unwrap() {
                panic!("the image's gateway exited ({status}):\n{}", gw.logs());
            }
            if reqwest::get(&healthz).await.is_ok_and(|r| r.status().is_success())
                && tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            {
                return gw;
            }
            assert!(Instant::now() < deadline, "the image's gateway is not healthy:\n{}", gw.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ImageGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_gateway_serves_from_the_rootfs_resolving_names_and_verifying_tls_with_its_bundle() {
    if !available() {
        return;
    }
    common::init();
    // An https upstream by name, with a certificate of a private CA.
    let host = "upstream.authgate.test";
    let ca = TestCa::new("authgate image test CA");
    let echo = Echo::start().await;
    let tls = TlsProxy::start(&ca.server(&[host]), host, &echo.url()).await;
    let image = Unpacked::new();
    // What the kubelet mounts into a pod; the static binary resolves with it.
    std::fs::write(image.rootfs().join("etc/hosts"), format!("127.0.0.1 {host}\n")).unwrap();

    // Debian's roots do not include the private CA: refused, fail closed.
    let gw = ImageGateway::start(&image, &tls.origin).await;
    let r = reqwest::get(format!("{}/refused", gw.base)).await.unwrap();
    assert_eq!(r.status(), 502, "{}", gw.logs());
    assert_eq!(echo.hits(), 0, "nothing reached the upstream");
    let logs = gw.logs();
    assert!(
        logs.contains("UnknownIssuer"),
        "refused for its certificate's issuer, not a name or connection error:\n{logs}"
    );
    drop(gw);

    // The same image with the private CA added to the bundle it trusts:
    // name resolution, TLS and the proxy all work from the rootfs.
    let bundle = image.rootfs().join(CA_BUNDLE);
    let mut pem = std::fs::read_to_string(&bundle).unwrap();
    pem.push_str(&ca.cert_pem);
    std::fs::write(&bundle, pem).unwrap();
    let gw = ImageGateway::start(&image, &tls.origin).await;
    let r = reqwest::get(format!("{}/through", gw.base)).await.unwrap();
    assert_eq!(r.status(), 200, "{}", gw.logs());
    let echoed = common::echo::report(&r.text().await.unwrap());
    assert_eq!(echoed["path"], "/through", "{echoed}");
    assert_eq!(echo.hits(), 1);
}
