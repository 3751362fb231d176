//! The answer cache under HTTP: answers are cached under the subjects the sequencer's
//! commit hook invalidates, so a read after an acknowledged write never sees the old
//! answer — for records, filtered records, negative answers and DIDs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use http_fixture::{Node, value};
use medid_did::KeyPair;
use medid_resolver::CacheKey;
use serde_json::json;

#[tokio::test]
async fn a_read_after_a_write_never_sees_the_old_value() {
    let node = Node::start();
    let cssd = KeyPair::generate();
    node.prefix("86.1000", &cssd).await;
    let uri = "/api/handles/86.1000/PKG-1";
    let key = CacheKey::new("86.1000/PKG-1", "http:/api/handles");
    let filtered = CacheKey::new("86.1000/PKG-1", "http:/api/handles?type=url");

    // Not found: cached under the identifier.
    assert_eq!(node.get(uri).await.expect(404)["responseCode"], 100);
    assert!(node.cache.get(&key).is_some(), "the 404 is cached");
    node.accept(
        "identifier.register",
        json!({"id": "86.1000/PKG-1", "values": [value(1, "URL", "https://v0.example")]}),
        &[&cssd],
    )
    .await;
    assert!(node.cache.get(&key).is_none(), "the write dropped it");

    for version in 1..=20u64 {
        let data = |v: u64| format!("https://v{v}.example");
        let answer = node.get(uri).await.expect(200);
        assert_eq!(answer["values"][0]["data"]["value"], data(version - 1));
        let answer = node.get(&format!("{uri}?type=URL")).await.expect(200);
        assert_eq!(answer["values"][0]["data"]["value"], data(version - 1));
        assert!(node.cache.get(&key).is_some() && node.cache.get(&filtered).is_some());
        node.accept(
            "identifier.update",
            json!({"id": "86.1000/PKG-1", "version": version, "set": [value(1, "URL", &data(version))]}),
            &[&cssd],
        )
        .await;
        let answer = node.get(uri).await.expect(200);
        assert_eq!(
            answer["values"][0]["data"]["value"],
            data(version),
            "after update {version}"
        );
        let answer = node.get(&format!("{uri}?type=url")).await.expect(200);
        assert_eq!(answer["values"][0]["data"]["value"], data(version));
    }

    // Deleted: the cached record goes with it.
    node.accept(
        "identifier.delete",
        json!({"id": "86.1000/PKG-1", "version": 21}),
        &[&cssd],
    )
    .await;
    assert_eq!(node.get(uri).await.expect(404)["responseCode"], 100);
}

#[tokio::test]
async fn not_responsible_until_the_prefix_exists() {
    let node = Node::start();
    let uri = "/api/handles/87.5/X";
    assert_eq!(node.get(uri).await.expect(400)["responseCode"], 301);
    assert!(
        node.cache
            .get(&CacheKey::new("87.5/X", "http:/api/handles"))
            .is_some()
    );
    // A new prefix changes what every identifier under it resolves to.
    node.prefix("87", &KeyPair::generate()).await;
    assert_eq!(node.get(uri).await.expect(404)["responseCode"], 100);
}

#[tokio::test]
async fn did_answers_follow_registration_and_deactivation() {
    let node = Node::start();
    let person = KeyPair::generate();
    let did = person.did().to_string();
    let uri = format!("/1.0/identifiers/{did}");
    assert_eq!(
        node.get(&uri).await.expect(200)["didDocumentMetadata"],
        json!({})
    );
    assert!(
        node.cache
            .get(&CacheKey::new(&did, "http:/1.0/identifiers;result"))
            .is_some()
    );
    node.accept(
        "did.register",
        json!({"did": did, "name": "P", "role": "person"}),
        &[&person],
    )
    .await;
    assert_eq!(
        node.get(&uri).await.expect(200)["didDocumentMetadata"]["deactivated"],
        false
    );
    node.accept("did.deactivate", json!({"did": did}), &[&person])
        .await;
    assert_eq!(
        node.get(&uri).await.expect(410)["didDocumentMetadata"]["deactivated"],
        true
    );
}

#[tokio::test]
async fn a_disabled_cache_answers_the_same() {
    let node = Node::start_with_cache(medid_resolver::AnswerCache::disabled());
    let cssd = KeyPair::generate();
    node.prefix("86.1000", &cssd).await;
    node.accept(
        "identifier.register",
        json!({"id": "86.1000/A", "values": [value(1, "URL", "https://a.example")]}),
        &[&cssd],
    )
    .await;
    assert_eq!(
        node.get("/api/handles/86.1000/A").await.expect(200)["responseCode"],
        1
    );
    assert_eq!(
        node.get("/api/handles/86.1000/B").await.expect(404)["responseCode"],
        100
    );
}
