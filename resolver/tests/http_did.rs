//! `GET /1.0/identifiers/{did}`: the DID Resolution HTTP binding on a real node —
//! registered, unregistered and deactivated DIDs, representations, and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use http_fixture::Node;
use medid_did::{KeyFormat, KeyPair, did_document};
use serde_json::json;

const RESULT_TYPE: &str = "application/ld+json;profile=\"https://w3id.org/did-resolution\"";

#[tokio::test]
async fn an_unregistered_did_key_resolves_from_its_key() {
    let node = Node::start();
    let person = KeyPair::generate();
    let did = person.did().to_string();
    let reply = node.get(&format!("/1.0/identifiers/{did}")).await;
    let result = reply.expect(200);
    assert_eq!(reply.header("content-type"), Some(RESULT_TYPE));
    assert_eq!(
        result["didDocument"],
        did_document(&person.did(), KeyFormat::Multikey, false)
    );
    assert_eq!(
        result["didDocument"]["verificationMethod"][0]["type"],
        "Multikey"
    );
    assert_eq!(
        result["didResolutionMetadata"],
        json!({"contentType": "application/did+ld+json"})
    );
    assert_eq!(result["didDocumentMetadata"], json!({}));
}

#[tokio::test]
async fn a_registered_did_has_metadata_and_a_deactivated_one_is_gone() {
    let node = Node::start();
    let hospital = KeyPair::generate();
    let did = hospital.did().to_string();
    let uri = format!("/1.0/identifiers/{did}");
    // Resolved (and cached) before registration…
    assert_eq!(
        node.get(&uri).await.expect(200)["didDocumentMetadata"],
        json!({})
    );
    node.accept(
        "did.register",
        json!({"did": did, "name": "St. Example Hospital", "role": "hospital"}),
        &[&hospital],
    )
    .await;
    // …and the registration is visible at once.
    let result = node.get(&uri).await.expect(200);
    let metadata = &result["didDocumentMetadata"];
    assert_eq!(metadata["deactivated"], false);
    let created = metadata["created"].as_str().unwrap();
    assert_eq!(metadata["updated"], created);

    // The bare document.
    for accept in ["application/did+json", "application/did+ld+json"] {
        let reply = node.get_with(&uri, &[("accept", accept)]).await;
        assert_eq!(
            reply.expect(200),
            did_document(&hospital.did(), KeyFormat::Multikey, false)
        );
        assert_eq!(reply.header("content-type"), Some(accept));
    }

    node.accept("did.deactivate", json!({"did": did}), &[&hospital])
        .await;
    let reply = node.get(&uri).await;
    let result = reply.expect(410);
    assert_eq!(result["didDocumentMetadata"]["deactivated"], true);
    assert_eq!(result["didDocumentMetadata"]["created"], created);
    // 410 with the resolution result whatever the representation asked for.
    let reply = node
        .get_with(&uri, &[("accept", "application/did+json")])
        .await;
    assert_eq!(
        reply.expect(410)["didDocumentMetadata"]["deactivated"],
        true
    );
    assert_eq!(reply.header("content-type"), Some(RESULT_TYPE));
}

#[tokio::test]
async fn errors_are_resolution_results() {
    let node = Node::start();
    let check = |uri: &'static str, status: u16, error: &'static str| {
        let node = &node;
        async move {
            let reply = node.get(uri).await;
            let result = reply.expect(status);
            assert_eq!(
                result["didResolutionMetadata"]["error"], error,
                "{uri}: {result}"
            );
            assert!(result["didResolutionMetadata"]["errorMessage"].is_string());
            assert_eq!(result["didDocument"], serde_json::Value::Null);
            assert_eq!(reply.header("content-type"), Some(RESULT_TYPE));
        }
    };
    check(
        "/1.0/identifiers/did:web:example.com",
        501,
        "methodNotSupported",
    )
    .await;
    check("/1.0/identifiers/not-a-did", 400, "invalidDid").await;
    check("/1.0/identifiers/", 400, "invalidDid").await;
    check("/1.0/identifiers/did:key:z0OIl", 400, "invalidDid").await;
    check("/1.0/identifiers/did:key:abc", 400, "invalidDid").await;
    check("/1.0/identifiers/%FF", 400, "invalidDid").await;
    // A did:key URL with a fragment is not a DID.
    check(
        "/1.0/identifiers/did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp%23frag",
        400,
        "invalidDid",
    )
    .await;
    // An X25519 key where an Ed25519 key belongs.
    check(
        "/1.0/identifiers/did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F",
        400,
        "invalidPublicKeyType",
    )
    .await;
    let did = KeyPair::generate().did().to_string();
    let reply = node
        .get_with(
            &format!("/1.0/identifiers/{did}"),
            &[("accept", "text/html")],
        )
        .await;
    assert_eq!(
        reply.expect(406)["didResolutionMetadata"]["error"],
        "representationNotSupported"
    );
}
