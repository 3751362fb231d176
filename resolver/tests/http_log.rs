//! The ledger over HTTP on a real node of 300 entries: the checkpoint, tiles and entry
//! bundles byte for byte as on disk, inclusion and consistency proofs that verify, and
//! offline proof bundles (C2SP tlog-proof).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_fixture::{HOST, Node};
use medid_did::KeyPair;
use medid_registry::log::{
    Hash, leaf_hash, verify_checkpoint, verify_consistency, verify_inclusion,
};
use medid_registry::op::{draft, sign};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ENTRIES: u64 = 300;

/// A node whose ledger holds 300 DID registrations, submitted concurrently (so they
/// are committed in groups); returns it with each entry's leaf hash from its receipt.
async fn node() -> (Node, BTreeMap<u64, Hash>) {
    let node = Node::start();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..ENTRIES {
        let key = KeyPair::generate();
        let operation = sign(
            &draft(
                "did.register",
                json!({"did": key.did().to_string(), "name": "n", "role": "person"}),
            ),
            &[&key],
        )
        .unwrap();
        let body = serde_json::to_vec(&json!({"operation": operation})).unwrap();
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/ops")
            .header("host", HOST)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let app = node.app.clone();
        tasks.spawn(async move {
            let response = app.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 201);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&body).unwrap()
        });
    }
    let mut leaves = BTreeMap::new();
    while let Some(receipt) = tasks.join_next().await {
        let receipt = receipt.unwrap();
        let hash: Hash = receipt["entryHash"].as_str().unwrap().parse().unwrap();
        leaves.insert(receipt["leafIndex"].as_u64().unwrap(), hash);
    }
    assert_eq!(leaves.len() as u64, ENTRIES);
    (node, leaves)
}

async fn vkey(node: &Node) -> String {
    node.get("/api/node").await.expect(200)["verifierKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn tiles_bundles_proofs_and_proof_bundles() {
    let (node, leaves) = node().await;
    let log = node.path.join("log");
    let vkey = vkey(&node).await;

    // The checkpoint, as stored, and it verifies under the node's key.
    let reply = node.get("/checkpoint").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        reply.body.as_ref(),
        std::fs::read(log.join("checkpoint")).unwrap().as_slice()
    );
    let checkpoint = verify_checkpoint(&reply.body, &vkey).unwrap();
    assert_eq!(
        (checkpoint.origin.as_str(), checkpoint.size),
        ("test.medid.example", ENTRIES)
    );
    let note = reply.text();

    // Tiles and bundles, byte for byte: full ones immutable, partial ones cacheable.
    for (path, full) in [
        ("tile/0/000", true),
        ("tile/entries/000", true),
        ("tile/0/001.p/44", false),
        ("tile/entries/001.p/44", false),
        ("tile/1/000.p/1", false),
    ] {
        let reply = node.get(&format!("/{path}")).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(
            reply.body.as_ref(),
            std::fs::read(log.join(path)).unwrap().as_slice(),
            "{path}"
        );
        let cache = reply.header("cache-control").unwrap();
        assert_eq!(cache.contains("immutable"), full, "{path}: {cache}");
    }
    assert_eq!(node.get("/tile/0/000").await.body.len(), 8192);
    // Not in the tree, not a tile path, not canonical.
    for path in [
        "/tile/0/001.p/45",
        "/tile/0/002",
        "/tile/2/000.p/1",
        "/tile/0/1",
        "/tile/0/000.p/256",
        "/tile/00/000",
        "/tile/0/x000/000",
        "/tile/data/000",
        "/tile/../checkpoint",
        "/tile/0/000.p/44/x",
    ] {
        node.get(path).await.expect_error(404, "notFound");
    }

    // Inclusion proofs at the checkpoint's size, and at an older size.
    for index in [0, 1, 150, 255, 256, 299] {
        let proof = node
            .get(&format!("/api/log/proof/inclusion?index={index}"))
            .await
            .expect(200);
        assert_eq!(proof["treeSize"], ENTRIES);
        assert_eq!(proof["checkpoint"], note);
        let leaf: Hash = proof["leafHash"].as_str().unwrap().parse().unwrap();
        assert_eq!(leaf, leaves[&index]);
        let root: Hash = proof["root"].as_str().unwrap().parse().unwrap();
        assert_eq!(root, checkpoint.root);
        verify_inclusion(
            index,
            ENTRIES,
            &leaf,
            &hashes(&proof["proof"]),
            root.as_bytes(),
        )
        .unwrap();
    }
    let old = node
        .get("/api/log/proof/inclusion?index=7&size=100")
        .await
        .expect(200);
    let old_root: Hash = old["root"].as_str().unwrap().parse().unwrap();
    verify_inclusion(
        7,
        100,
        &leaves[&7],
        &hashes(&old["proof"]),
        old_root.as_bytes(),
    )
    .unwrap();

    // Consistency from size 100 to the checkpoint.
    let consistency = node
        .get("/api/log/proof/consistency?old=100")
        .await
        .expect(200);
    assert_eq!(
        (
            consistency["oldSize"].as_u64(),
            consistency["newSize"].as_u64()
        ),
        (Some(100), Some(ENTRIES))
    );
    let new_root: Hash = consistency["newRoot"].as_str().unwrap().parse().unwrap();
    assert_eq!(new_root, checkpoint.root);
    assert_eq!(consistency["oldRoot"], old["root"]);
    verify_consistency(
        100,
        ENTRIES,
        &hashes(&consistency["proof"]),
        old_root.as_bytes(),
        new_root.as_bytes(),
    )
    .unwrap();
    let same = node
        .get("/api/log/proof/consistency?old=5&new=5")
        .await
        .expect(200);
    assert_eq!(same["proof"], json!([]));

    // Refusals.
    node.get("/api/log/proof/inclusion?index=300")
        .await
        .expect_error(404, "notFound");
    node.get("/api/log/proof/inclusion?index=1&size=301")
        .await
        .expect_error(400, "badRequest");
    node.get("/api/log/proof/inclusion")
        .await
        .expect_error(400, "badRequest");
    node.get("/api/log/proof/inclusion?index=-1")
        .await
        .expect_error(400, "badRequest");
    node.get("/api/log/proof/inclusion?index=99999999999999999999999")
        .await
        .expect_error(400, "badRequest");
    node.get("/api/log/proof/consistency?old=0")
        .await
        .expect_error(400, "badRequest");
    node.get("/api/log/proof/consistency?old=9&new=8")
        .await
        .expect_error(400, "badRequest");
    node.get("/api/log/proof/consistency?old=5&new=301")
        .await
        .expect_error(400, "badRequest");

    // Offline proof bundles.
    for index in [0, 42, 299] {
        let reply = node.get(&format!("/api/log/bundle/{index}")).await;
        assert_eq!(reply.status, 200);
        let bundle = ProofBundle::parse(&reply.text());
        assert_eq!((bundle.index, bundle.extra), (index, None));
        assert_eq!(bundle.checkpoint, note);
        let cp = verify_checkpoint(bundle.checkpoint.as_bytes(), &vkey).unwrap();
        verify_inclusion(
            index,
            cp.size,
            &leaves[&index],
            &bundle.proof,
            cp.root.as_bytes(),
        )
        .unwrap();
    }
    let with_entry = ProofBundle::parse(&node.get("/api/log/bundle/42?extra=entry").await.text());
    let entry = with_entry.extra.unwrap();
    assert_eq!(leaf_hash(&entry), leaves[&42]);
    let operation: Value = serde_json::from_slice(&entry).unwrap();
    assert_eq!(operation["op"], "did.register");
    node.get("/api/log/bundle/300")
        .await
        .expect_error(404, "notFound");
    for bad in [
        "/api/log/bundle/042",
        "/api/log/bundle/x",
        "/api/log/bundle/-1",
        "/api/log/bundle/1?extra=all",
    ] {
        node.get(bad).await.expect_error(400, "badRequest");
    }
}

fn hashes(proof: &Value) -> Vec<Hash> {
    proof
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().parse().unwrap())
        .collect()
}

/// A `c2sp.org/tlog-proof@v1` bundle, read as its spec describes.
struct ProofBundle {
    extra: Option<Vec<u8>>,
    index: u64,
    proof: Vec<Hash>,
    checkpoint: String,
}

impl ProofBundle {
    fn parse(text: &str) -> Self {
        let (head, checkpoint) = text.split_once("\n\n").unwrap();
        let mut lines = head.lines();
        assert_eq!(lines.next(), Some("c2sp.org/tlog-proof@v1"));
        let mut line = lines.next().unwrap();
        let extra = line.strip_prefix("extra ").map(|b64| {
            let bytes = BASE64.decode(b64).unwrap();
            line = lines.next().unwrap();
            bytes
        });
        let index = line.strip_prefix("index ").unwrap();
        assert!(index == "0" || !index.starts_with('0'));
        let proof = lines.map(|l| l.parse().unwrap()).collect();
        Self {
            extra,
            index: index.parse().unwrap(),
            proof,
            checkpoint: checkpoint.to_owned(),
        }
    }
}
