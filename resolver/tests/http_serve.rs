//! The HTTP front end served for real on `127.0.0.1:0` and spoken to with a real HTTP
//! client: concurrent writes, reads after writes, a signed read of a restricted value,
//! the ledger's files and an oversized body.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use std::net::SocketAddr;

use axum::http::HeaderMap;
use http_fixture::{Node, value};
use medid_did::KeyPair;
use medid_registry::op::{InputValue, ReadPermission, draft, seal_values, sign};
use medid_resolver::http::signature::{Message, sign_with_did};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A served node; stops serving when dropped.
struct Served {
    node: Node,
    addr: SocketAddr,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    async fn start() -> Self {
        let node = Node::start();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = node.app.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            node,
            addr,
            client: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn submit(&self, operation: Value, restricted: Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/ops"))
            .json(&json!({"operation": operation, "restricted": restricted}))
            .send()
            .await
            .unwrap()
    }

    async fn accept(&self, op: &str, fields: Value, keys: &[&KeyPair]) -> Value {
        let response = self
            .submit(sign(&draft(op, fields), keys).unwrap(), json!([]))
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_served_node_over_real_http() {
    let served = Served::start().await;
    let cssd = KeyPair::generate();
    let hospital = KeyPair::generate();
    let admin = served.node.admin.clone();
    served
        .accept(
            "prefix.create",
            json!({"prefix": "86.1000", "controllers": [cssd.did().to_string()]}),
            &[&admin],
        )
        .await;

    // Fifty writers at once: every one gets its own leaf.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = served.client.clone();
        let url = served.url("/api/ops");
        let operation = sign(
            &draft(
                "identifier.register",
                json!({"id": format!("86.1000/PKG-{i}"), "values": [value(1, "URL", &format!("https://p{i}.example"))]}),
            ),
            &[&cssd],
        )
        .unwrap();
        tasks.spawn(async move {
            let response = client
                .post(url)
                .json(&json!({"operation": operation}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["leafIndex"]
                .as_u64()
                .unwrap()
        });
    }
    let mut leaves = Vec::new();
    while let Some(leaf) = tasks.join_next().await {
        leaves.push(leaf.unwrap());
    }
    leaves.sort_unstable();
    assert_eq!(leaves, (1..=50).collect::<Vec<_>>());

    // Reads after writes, through the cache.
    for round in 0..5u64 {
        let (status, answer) = served.get_json("/api/handles/86.1000/PKG-7").await;
        assert_eq!(status, 200);
        let expected = if round == 0 {
            "https://p7.example".to_owned()
        } else {
            format!("https://r{round}.example")
        };
        assert_eq!(answer["values"][0]["data"]["value"], expected);
        served
            .accept(
                "identifier.update",
                json!({"id": "86.1000/PKG-7", "version": round + 1, "set": [value(1, "URL", &format!("https://r{}.example", round + 1))]}),
                &[&cssd],
            )
            .await;
        let (_, answer) = served.get_json("/api/handles/86.1000/PKG-7").await;
        assert_eq!(
            answer["values"][0]["data"]["value"],
            format!("https://r{}.example", round + 1)
        );
    }
    let (status, answer) = served.get_json("/api/handles/86.1000/NONE").await;
    assert_eq!((status, answer["responseCode"].as_u64()), (404, Some(100)));

    // A restricted value, read with a signed request from a real client.
    let (values, payloads) = seal_values(&[InputValue {
        index: 1,
        kind: "PATIENT".into(),
        data: "p-42".into(),
        ttl: 60,
        read: ReadPermission::Restricted(vec![hospital.did()]),
    }]);
    let operation = sign(
        &draft(
            "identifier.register",
            json!({"id": "86.1000/USE-1", "values": values}),
        ),
        &[&cssd],
    )
    .unwrap();
    let response = served
        .submit(operation, serde_json::to_value(&payloads).unwrap())
        .await;
    assert_eq!(response.status(), 201);
    let path = "/api/handles/86.1000/USE-1";
    let authority = served.addr.to_string();
    let headers = HeaderMap::new();
    let message = Message {
        method: "GET",
        scheme: "http",
        authority: &authority,
        path,
        query: None,
        headers: &headers,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = sign_with_did(&message, &hospital, now).unwrap();
    let response = served
        .client
        .get(served.url(path))
        .header("signature-input", &signed.signature_input)
        .header("signature", &signed.signature)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["values"][0]["data"]["value"], "p-42");
    let (_, unsigned) = served.get_json(path).await;
    assert_eq!(
        unsigned["values"].as_array().unwrap().len(),
        1,
        "the value is hidden: {unsigned}"
    );
    assert_eq!(unsigned["values"][0]["type"], "HS_ADMIN");

    // The ledger's files.
    let checkpoint = served
        .client
        .get(served.url("/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        checkpoint.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let note = checkpoint.bytes().await.unwrap();
    assert_eq!(
        note.as_ref(),
        std::fs::read(served.node.path.join("log/checkpoint"))
            .unwrap()
            .as_slice()
    );
    let size = String::from_utf8(note.to_vec())
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(size, 57);
    let tile = served
        .client
        .get(served.url("/tile/0/000.p/57"))
        .send()
        .await
        .unwrap();
    assert_eq!(tile.status(), 200);
    assert_eq!(tile.bytes().await.unwrap().len(), 57 * 32);
    let (status, proof) = served.get_json("/api/log/proof/inclusion?index=3").await;
    assert_eq!((status, proof["treeSize"].as_u64()), (200, Some(57)));

    // An oversized body: a JSON 413, and the server keeps serving.
    let response = served
        .client
        .post(served.url("/api/ops"))
        .header("content-type", "application/json")
        // The server stops reading an oversized body and closes the connection: do
        // not let the client reuse it for the next request.
        .header("connection", "close")
        .body(vec![b' '; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "tooLarge");
    let response = served
        .client
        .post(served.url("/api/ops"))
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalidJson"
    );
    let (status, _) = served.get_json("/api/handles/86.1000/PKG-1").await;
    assert_eq!(status, 200);

    served.stop().await;
}
