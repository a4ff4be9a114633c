//! A real nginx (Debian's, with `auth_request` compiled in):
//!
//! - [`Nginx::start`]: the ingress in front of a forward-auth gateway, the
//!   way ingress-nginx wires `auth-url`, `auth-signin` and
//!   `auth-response-headers`;
//! - [`Nginx::tls`]: an upstream or provider endpoint served over TLS with
//!   a certificate from [`super::pki::TestCa`], optionally requiring a
//!   client certificate.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pki::Pem;

/// The nginx binary, if this machine has one (`AUTHGATE_NGINX` overrides).
pub fn binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("AUTHGATE_NGINX") {
        return Some(PathBuf::from(p));
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

/// One nginx process with its own prefix directory; stopped on drop.
pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:<port>` (`https://` for [`Nginx::tls`]).
    pub base: String,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on `port`: `/oauth2/` goes to the gateway on
    /// `gateway_port`; `/api/` asks `/oauth2/auth` and answers 401 itself
    /// without a session; everything else asks too and sends browsers to
    /// sign in. Both pass the identity headers, the access token and any
    /// refreshed session cookie on.
    pub async fn start(port: u16, gateway_port: u16, upstream_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let guarded = |extra: &str| {
            format!(
                r#"
      auth_request /oauth2/auth;
      {extra}
      auth_request_set $auth_user $upstream_http_x_auth_request_user;
      auth_request_set $auth_email $upstream_http_x_auth_request_email;
      auth_request_set $auth_groups $upstream_http_x_auth_request_groups;
      auth_request_set $auth_token $upstream_http_x_auth_request_access_token;
      auth_request_set $auth_cookie $upstream_http_set_cookie;
      add_header Set-Cookie $auth_cookie;
      proxy_set_header X-Auth-Request-User $auth_user;
      proxy_set_header X-Auth-Request-Email $auth_email;
      proxy_set_header X-Auth-Request-Groups $auth_groups;
      proxy_set_header Authorization "Bearer $auth_token";
      proxy_pass http://127.0.0.1:{upstream_port};"#
            )
        };
        let conf = format!(
            r#"{prelude}
  # Chunked session cookies need room (as ingress-nginx's proxy-buffer-size).
  large_client_header_buffers 4 32k;
  proxy_buffer_size 32k;
  proxy_buffers 8 32k;
  server {{
    listen 127.0.0.1:{port};
    location /oauth2/ {{
      proxy_pass http://127.0.0.1:{gateway_port};
      proxy_set_header Host $http_host;
    }}
    location = /oauth2/auth {{
      proxy_pass http://127.0.0.1:{gateway_port};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    location /api/ {{{api}
    }}
    location / {{{browser}
    }}
    location @signin {{
      return 302 /oauth2/start?rd=$request_uri;
    }}
  }}
}}
"#,
            prelude = prelude(dir.path()),
            api = guarded(""),
            browser = guarded("error_page 401 = @signin;"),
        );
        Self::spawn(dir, &conf, port, format!("http://127.0.0.1:{port}")).await
    }

    /// Starts nginx serving TLS on `127.0.0.1:port` with `site`'s
    /// certificate (HTTP/2 offered by ALPN too, so a client that offers
    /// `h2` would get it). `base` is `https://127.0.0.1:<port>`.
    pub async fn tls(port: u16, site: TlsSite<'_>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        std::fs::write(dir.path().join("server.crt"), &site.cert.cert).expect("server.crt");
        std::fs::write(dir.path().join("server.key"), &site.cert.key).expect("server.key");
        let verify = match site.client_ca {
            Some(ca) => {
                std::fs::write(dir.path().join("client-ca.crt"), ca).expect("client-ca.crt");
                format!("ssl_client_certificate {d}/client-ca.crt;\n    ssl_verify_client on;")
            }
            None => String::new(),
        };
        let answer = match site.answer {
            Answer::Report => r#"
      add_header X-Client-DN $ssl_client_s_dn always;
      default_type text/plain;
      return 200 "tls-ok sni=$ssl_server_name client=$ssl_client_s_dn protocol=$server_protocol\n";"#
                .to_owned(),
            Answer::Proxy(to) => format!("\n      proxy_pass http://127.0.0.1:{to};"),
        };
        let conf = format!(
            r#"{prelude}
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {d}/server.crt;
    ssl_certificate_key {d}/server.key;
    {verify}
    location / {{{answer}
    }}
  }}
}}
"#,
            prelude = prelude(dir.path()),
        );
        Self::spawn(dir, &conf, port, format!("https://127.0.0.1:{port}")).await
    }

    async fn spawn(dir: tempfile::TempDir, conf: &str, port: u16, base: String) -> Self {
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log");
        let child = Command::new(binary().expect("nginx"))
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        let mut me = Self { child, base, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "nginx did not start: {}", me.logs());
            assert!(me.child.try_wait().unwrap().is_none(), "nginx exited: {}", me.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        me
    }

    /// An absolute URL on nginx.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// nginx's access log: one line per request it served.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Waits up to 5 s for the access log to hold every one of `lines`
    /// (nginx writes a request's line only after answering it); returns
    /// the log either way.
    pub async fn access_log_with(&self, lines: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.access_log();
            if lines.iter().all(|l| log.contains(l)) || Instant::now() > deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// nginx's error log and stderr.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The top of every config: one foreground process, logs and temporary
/// files under `dir`, and an open `http {` block.
fn prelude(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 128; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;"#
    )
}

/// What an nginx from [`Nginx::tls`] serves.
pub struct TlsSite<'a> {
    /// Its server certificate and key.
    pub cert: &'a Pem,
    /// With a CA (PEM), a client certificate signed by it is required
    /// (`ssl_verify_client on`): without one nginx answers 400.
    pub client_ca: Option<&'a str>,
    /// What it answers.
    pub answer: Answer,
}

/// How an nginx from [`Nginx::tls`] answers every request.
pub enum Answer {
    /// `200`, body `tls-ok sni=<SNI> client=<client certificate subject>
    /// protocol=<HTTP version>`, and the subject in `X-Client-DN`.
    Report,
    /// Proxies to `http://127.0.0.1:<port>` (e.g. the OP).
    Proxy(u16),
}
