//! An upstream that shows what reached it.
//!
//! - any path: JSON `{method, path, query, headers: {name: [values]},
//!   body_len, body_sha256}`; browsers (`Accept: text/html`) get the same
//!   JSON inside `<pre id="echo">`.
//! - `/bytes?n=N`: a streamed response of N bytes.
//! - `/ws`: a WebSocket that echoes every message; the text `whoami`
//!   answers with the `X-Auth-Request-User` the upgrade request carried.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use url::Url;

/// A running echo server; stopped on drop.
pub struct Echo {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Echo {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/ws", get(websocket))
            .route("/bytes", get(bytes))
            .fallback(echo)
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, hits, task }
    }

    /// Base URL.
    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).unwrap()
    }

    /// How many requests reached it.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The echo's report from a response body: the JSON itself, or the JSON
/// inside the `<pre id="echo">` of the page a browser gets.
pub fn report(body: &str) -> Value {
    let json = match body.split_once("<pre id=\"echo\">") {
        Some((_, rest)) => rest
            .split_once("</pre>")
            .map_or(rest, |(pre, _)| pre)
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
        None => body.to_owned(),
    };
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("not an echo report ({e}): {body}"))
}

/// One header's values as the echo reported them.
pub fn header_values(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"][name.to_ascii_lowercase()]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The single value of a header, if exactly one arrived.
pub fn header(echo: &Value, name: &str) -> Option<String> {
    let mut values = header_values(echo, name);
    assert!(values.len() <= 1, "header {name} arrived {} times: {values:?}", values.len());
    values.pop()
}

async fn echo(State(hits): State<Arc<AtomicUsize>>, request: Request) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let mut stream = body.into_data_stream();
    let mut len = 0usize;
    let mut sha = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        };
        len += chunk.len();
        sha.update(&chunk);
    }
    let report = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": len,
        "body_sha256": format!("{:x}", sha.finalize()),
    });
    let wants_html =
        parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let text = serde_json::to_string_pretty(&report)
            .unwrap()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let html = format!(
            "<!DOCTYPE html><html><head><title>echo</title></head><body><pre id=\"echo\">{text}</pre></body></html>"
        );
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
    } else {
        axum::Json(report).into_response()
    }
}

#[derive(serde::Deserialize)]
struct BytesQuery {
    n: usize,
}

async fn bytes(State(hits): State<Arc<AtomicUsize>>, Query(q): Query<BytesQuery>) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut left = q.n;
    let stream = futures::stream::poll_fn(move |_| {
        if left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = left.min(chunk.len());
        left -= n;
        std::task::Poll::Ready(Some(Ok::<_, std::io::Error>(chunk.slice(..n))))
    });
    Body::from_stream(stream).into_response()
}

async fn websocket(State(hits): State<Arc<AtomicUsize>>, mut request: Request) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let Some(key) = request.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "not a WebSocket handshake").into_response();
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (StatusCode::BAD_REQUEST, "connection cannot be upgraded").into_response();
    };
    let user = request.headers().get("x-auth-request-user").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            let reply = match message {
                Message::Text(t) if t.as_str() == "whoami" => Message::text(user.clone()),
                Message::Text(t) => Message::Text(t),
                Message::Binary(b) => Message::Binary(b),
                Message::Close(_) => break,
                _ => continue,
            };
            if ws.send(reply).await.is_err() {
                break;
            }
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert("sec-websocket-accept", HeaderValue::from_str(&derive_accept_key(key.as_bytes())).unwrap());
    response
}
