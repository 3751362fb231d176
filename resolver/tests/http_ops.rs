//! `POST /api/ops` on a real node: receipts, every refusal with its status and code,
//! malformed and oversized bodies, and a node that cannot write.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use axum::body::Body;
use axum::http::{Method, Request};
use http_fixture::{HOST, Node, value};
use medid_did::KeyPair;
use medid_registry::op::{InputValue, ReadPermission, draft, seal_values, sign};
use serde_json::json;

fn register(id: &str) -> serde_json::Value {
    json!({"id": id, "values": [value(1, "URL", "https://a.example")]})
}

#[tokio::test]
async fn accepted_operations_get_receipts() {
    let node = Node::start();
    let cssd = KeyPair::generate();
    let admin = node.admin.clone();
    let reply = node
        .submit(
            "prefix.create",
            json!({"prefix": "86.1000", "controllers": [cssd.did().to_string()]}),
            &[&admin],
        )
        .await;
    let receipt = reply.expect(201);
    assert_eq!(receipt["leafIndex"], 0);
    assert_eq!(receipt["treeSize"], 1);
    assert_eq!(receipt["entryHash"].as_str().unwrap().len(), 44);
    assert_eq!(reply.header("location"), Some("/api/log/bundle/0"));
    let receipt = node
        .accept("identifier.register", register("86.1000/PKG-1"), &[&cssd])
        .await;
    assert_eq!(
        (receipt["leafIndex"].as_u64(), receipt["treeSize"].as_u64()),
        (Some(1), Some(2))
    );
    let keys: Vec<_> = receipt.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["leafIndex", "entryHash", "treeSize"]);
}

#[tokio::test]
async fn every_refusal_has_its_status_and_code() {
    let node = Node::start();
    let cssd = KeyPair::generate();
    let stranger = KeyPair::generate();
    node.prefix("86.1000", &cssd).await;

    // schema 422: index 0.
    node.submit(
        "identifier.register",
        json!({"id": "86.1000/X", "values": [value(0, "URL", "x")]}),
        &[&cssd],
    )
    .await
    .expect_error(422, "schema");
    // invalid 422: an identifier's syntax.
    let json = node
        .submit("identifier.register", register("86..1000/X"), &[&cssd])
        .await
        .expect_error(422, "invalid");
    assert!(
        json["message"].as_str().unwrap().starts_with("/id"),
        "{json}"
    );
    // proof 422: the document changed after signing.
    let mut forged = sign(
        &draft("identifier.register", register("86.1000/Z")),
        &[&cssd],
    )
    .unwrap();
    forged["id"] = json!("86.1000/W");
    node.submit_doc(forged, &[])
        .await
        .expect_error(422, "proof");
    // stale 422.
    let mut stale = draft("identifier.register", register("86.1000/Z"));
    stale["created"] = json!("2020-01-01T00:00:00Z");
    node.submit_doc(sign(&stale, &[&cssd]).unwrap(), &[])
        .await
        .expect_error(422, "stale");
    // notAuthorised 403.
    node.submit("identifier.register", register("86.1000/X"), &[&stranger])
        .await
        .expect_error(403, "notAuthorised");
    // notFound 404: no prefix for it, and no record to update.
    node.submit("identifier.register", register("99.1/X"), &[&cssd])
        .await
        .expect_error(404, "notFound");
    node.submit(
        "identifier.update",
        json!({"id": "86.1000/NONE", "version": 1, "set": [value(1, "URL", "https://b.example")]}),
        &[&cssd],
    )
    .await
    .expect_error(404, "notFound");
    // replay 409: the same document twice.
    let doc = sign(
        &draft("identifier.register", register("86.1000/X")),
        &[&cssd],
    )
    .unwrap();
    node.submit_doc(doc.clone(), &[]).await.expect(201);
    node.submit_doc(doc, &[]).await.expect_error(409, "replay");
    // exists 409.
    node.submit("identifier.register", register("86.1000/X"), &[&cssd])
        .await
        .expect_error(409, "exists");
    // conflict 409: made against an old version.
    node.submit(
        "identifier.update",
        json!({"id": "86.1000/X", "version": 7, "set": [value(1, "URL", "https://b.example")]}),
        &[&cssd],
    )
    .await
    .expect_error(409, "conflict");
    // restricted 422: a restricted value without its payload.
    let (values, _payloads) = seal_values(&[InputValue {
        index: 1,
        kind: "PATIENT".into(),
        data: "p-1".into(),
        ttl: 60,
        read: ReadPermission::Restricted(vec![cssd.did()]),
    }]);
    let doc = sign(
        &draft(
            "identifier.register",
            json!({"id": "86.1000/R", "values": values}),
        ),
        &[&cssd],
    )
    .unwrap();
    node.submit_doc(doc, &[])
        .await
        .expect_error(422, "restricted");
    // missingPossession 403: registering someone else's DID.
    node.submit(
        "did.register",
        json!({"did": stranger.did().to_string(), "name": "x", "role": "person"}),
        &[&cssd],
    )
    .await
    .expect_error(403, "missingPossession");
    // deactivated 403.
    let did = cssd.did().to_string();
    node.accept(
        "did.register",
        json!({"did": did, "name": "CSSD", "role": "sterilization-center"}),
        &[&cssd],
    )
    .await;
    node.accept("did.deactivate", json!({"did": did}), &[&cssd])
        .await;
    node.submit("identifier.register", register("86.1000/V"), &[&cssd])
        .await
        .expect_error(403, "deactivated");
}

/// An operation whose canonical form exceeds a ledger entry while its text fits in a
/// request body: JSON numbers such as `1.5e8` grow when canonicalised (`150000000`).
/// The size is checked before the proof, so the proof need not verify.
#[tokio::test]
async fn an_operation_too_large_for_the_ledger_is_413() {
    let node = Node::start();
    let proof = r#"{"type":"DataIntegrityProof","cryptosuite":"eddsa-jcs-2022","created":"2026-01-01T00:00:00Z","verificationMethod":"did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp","proofPurpose":"assertionMethod","proofValue":"z1111"}"#;
    let build = |data_len: usize| {
        let values: Vec<String> = (0..64)
            .map(|i| {
                format!(
                    r#"{{"index":{}.{}e8,"type":"DESC","data":"{}","ttl":2e9}}"#,
                    1 + i / 10,
                    i % 10,
                    "x".repeat(data_len)
                )
            })
            .collect();
        format!(
            r#"{{"op":"identifier.register","id":"86.1000/BIG","created":"2026-01-01T00:00:00Z","nonce":"0123456789abcdef","proof":{proof},"values":[{}]}}"#,
            values.join(",")
        )
    };
    let base = format!(r#"{{"operation":{}}}"#, build(0)).len();
    let operation = build((65_500 - base) / 64);
    let body = format!(r#"{{"operation":{operation}}}"#);
    assert!(body.len() <= 65_536, "{}", body.len());
    let canonical = medid_did::canonical_json(&serde_json::from_str(&operation).unwrap());
    assert!(canonical.len() > 65_535, "{}", canonical.len());
    node.post(body).await.expect_error(413, "tooLarge");
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let node = Node::start();
    node.post("{not json")
        .await
        .expect_error(400, "invalidJson");
    node.post("").await.expect_error(400, "invalidJson");
    node.post(vec![0xff, 0xfe, 0x00])
        .await
        .expect_error(400, "invalidJson");
    node.post("[1, 2]").await.expect_error(422, "schema");
    node.post("{}").await.expect_error(422, "schema");
    node.post(r#"{"operation": {}, "surprise": 1}"#)
        .await
        .expect_error(422, "schema");
    node.post(r#"{"operation": {"op": "prefix.create"}}"#)
        .await
        .expect_error(422, "schema");
    node.post(r#"{"operation": 5}"#)
        .await
        .expect_error(422, "schema");
    // Over 64 KiB: refused before it is parsed.
    let big = format!(r#"{{"operation": "{}"}}"#, "x".repeat(70_000));
    node.post(big.clone()).await.expect_error(413, "tooLarge");
    // The same without a Content-Length (streamed).
    let stream = futures_stream(big.into_bytes());
    let reply = node
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/ops")
                .header("host", HOST)
                .body(stream)
                .unwrap(),
        )
        .await;
    reply.expect_error(413, "tooLarge");
    // Another media type.
    let reply = node
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/ops")
                .header("host", HOST)
                .header("content-type", "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    reply.expect_error(415, "unsupportedMediaType");
    // Wrong method, unknown resource: JSON errors too.
    node.get("/api/ops")
        .await
        .expect_error(405, "methodNotAllowed");
    node.get("/nothing/here")
        .await
        .expect_error(404, "notFound");
    // A request target or header section too large.
    node.get(&format!("/api/handles/86.1/{}", "x".repeat(9000)))
        .await
        .expect_error(414, "uriTooLong");
    let long = "v".repeat(17_000);
    node.get_with("/checkpoint", &[("x-long", &long)])
        .await
        .expect_error(431, "headersTooLarge");
}

/// A body streamed in chunks, without a length.
fn futures_stream(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn a_node_that_cannot_write_answers_503() {
    let node = Node::start();
    // A file where the ledger's tile directory must go: the first append fails.
    std::fs::write(node.path.join("log/tile"), b"in the way").unwrap();
    let cssd = KeyPair::generate();
    let admin = node.admin.clone();
    let create = json!({"prefix": "86.1000", "controllers": [cssd.did().to_string()]});
    node.submit("prefix.create", create.clone(), &[&admin])
        .await
        .expect_error(503, "unavailable");
    // The sequencer stopped after the failed write: still 503, never a hang.
    node.submit("prefix.create", create, &[&admin])
        .await
        .expect_error(503, "unavailable");
}
