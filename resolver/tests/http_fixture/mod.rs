//! What the `http_*` tests share: a node in a temporary directory with its sequencer
//! (whose commit hook invalidates the answer cache as `medid serve` does), the HTTP app
//! over it, and helpers to send requests and signed operations.

#![allow(dead_code)] // each test file uses a part of it

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use medid_did::KeyPair;
use medid_registry::op::{RestrictedPayload, draft, sign};
use medid_registry::{Registry, Sequencer};
use medid_resolver::AnswerCache;
use medid_resolver::http::signature::{Message, SignatureHeaders, sign_with_did};
use medid_resolver::http::{AppState, NodeInfo, app};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The `Host` the tests address the node by.
pub(crate) const HOST: &str = "node.test";

/// A node, its admin key, its cache and its HTTP app.
pub(crate) struct Node {
    _dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
    pub(crate) admin: KeyPair,
    pub(crate) cache: AnswerCache,
    pub(crate) app: Router,
    pub(crate) info: NodeInfo,
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts the status and that the body is JSON; returns the JSON.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Asserts an error answer: the status, JSON with `error` = `code` and a message.
    #[track_caller]
    pub(crate) fn expect_error(&self, status: u16, code: &str) -> Value {
        let json = self.expect(status);
        assert_eq!(json["error"], code, "{json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
        json
    }
}

impl Node {
    pub(crate) fn start() -> Self {
        Self::start_with_cache(AnswerCache::new(10_000))
    }

    pub(crate) fn start_with_cache(cache: AnswerCache) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        let admin = KeyPair::generate();
        Registry::init(&path, "test.medid.example", Some(admin.did())).unwrap();
        let registry = Registry::open(&path).unwrap();
        let info = NodeInfo::of(&registry, "medid.test").unwrap();
        let hook = cache.clone();
        let (sequencer, _thread) =
            Sequencer::start_with_hook(registry, move |keys| hook.invalidate_changed(keys))
                .unwrap();
        let state = AppState::new(sequencer, info.clone(), cache.clone()).unwrap();
        Self {
            _dir: dir,
            path,
            admin,
            cache,
            app: app(state),
            info,
        }
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, uri: &str) -> Reply {
        self.get_with(uri, &[]).await
    }

    pub(crate) async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder().uri(uri).header("host", HOST);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// A GET signed (RFC 9421) by `key`, created `age` seconds ago.
    pub(crate) async fn get_signed(&self, uri: &str, key: &KeyPair, age: i64) -> Reply {
        let signed = sign_get(uri, key, age);
        self.get_with(
            uri,
            &[
                ("signature-input", &signed.signature_input),
                ("signature", &signed.signature),
            ],
        )
        .await
    }

    pub(crate) async fn post(&self, body: impl Into<Body>) -> Reply {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/ops")
                .header("host", HOST)
                .header("content-type", "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn submit_doc(
        &self,
        operation: Value,
        restricted: &[RestrictedPayload],
    ) -> Reply {
        let body = json!({"operation": operation, "restricted": restricted});
        self.post(serde_json::to_vec(&body).unwrap()).await
    }

    /// Drafts, signs and submits an operation.
    pub(crate) async fn submit(&self, op: &str, fields: Value, keys: &[&KeyPair]) -> Reply {
        self.submit_doc(sign(&draft(op, fields), keys).unwrap(), &[])
            .await
    }

    /// Like [`Node::submit`], and asserts it was accepted.
    pub(crate) async fn accept(&self, op: &str, fields: Value, keys: &[&KeyPair]) -> Value {
        self.submit(op, fields, keys).await.expect(201)
    }

    /// Creates a top-level prefix controlled by `controller`.
    pub(crate) async fn prefix(&self, prefix: &str, controller: &KeyPair) {
        let admin = self.admin.clone();
        self.accept(
            "prefix.create",
            json!({"prefix": prefix, "controllers": [controller.did().to_string()]}),
            &[&admin],
        )
        .await;
    }
}

/// The signature headers of `GET uri` to [`HOST`] by `key`, created `age` s ago.
pub(crate) fn sign_get(uri: &str, key: &KeyPair, age: i64) -> SignatureHeaders {
    let (path, query) = match uri.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (uri, None),
    };
    let headers = HeaderMap::new();
    let message = Message {
        method: "GET",
        scheme: "http",
        authority: HOST,
        path,
        query,
        headers: &headers,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    sign_with_did(&message, key, now - age).unwrap()
}

/// A public value.
pub(crate) fn value(index: u32, kind: &str, data: &str) -> Value {
    json!({"index": index, "type": kind, "data": data})
}
