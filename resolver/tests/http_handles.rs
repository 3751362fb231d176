//! `GET /api/handles/{id}` on a real node: the Handle.Net REST shapes and response
//! codes, filters, every identifier syntax, and restricted values behind HTTP Message
//! Signatures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use http_fixture::{Node, sign_get, value};
use medid_did::KeyPair;
use medid_registry::op::{InputValue, ReadPermission, draft, seal_values, sign};
use serde_json::{Value, json};

const SECRET: &str = "patient-pseudonym-7f3a9c";

/// A node with prefix 86.1000 (controlled by `cssd`) and `86.1000/PKG-1` holding a URL,
/// an EMAIL, a DESC and a PATIENT value restricted to `hospital`.
async fn node_with_record(cssd: &KeyPair, hospital: &KeyPair) -> Node {
    let node = Node::start();
    node.prefix("86.1000", cssd).await;
    let (values, payloads) = seal_values(&[
        input(
            1,
            "URL",
            "https://cssd.example/pkg-1",
            ReadPermission::Public,
            3600,
        ),
        input(2, "EMAIL", "cssd@example.org", ReadPermission::Public, 600),
        input(3, "DESC", "instrument tray", ReadPermission::Public, 86_400),
        input(
            4,
            "PATIENT",
            SECRET,
            ReadPermission::Restricted(vec![hospital.did()]),
            60,
        ),
    ]);
    let doc = sign(
        &draft(
            "identifier.register",
            json!({"id": "86.1000/PKG-1", "values": values}),
        ),
        &[cssd],
    )
    .unwrap();
    node.submit_doc(doc, &payloads).await.expect(201);
    node
}

fn input(index: u32, kind: &str, data: &str, read: ReadPermission, ttl: u32) -> InputValue {
    InputValue {
        index,
        kind: kind.into(),
        data: data.into(),
        ttl,
        read,
    }
}

fn indexes(answer: &Value) -> Vec<u64> {
    answer["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["index"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_record_in_the_handle_net_shape() {
    let cssd = KeyPair::generate();
    let hospital = KeyPair::generate();
    let node = node_with_record(&cssd, &hospital).await;
    let reply = node.get("/api/handles/86.1000/PKG-1").await;
    let answer = reply.expect(200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(answer["responseCode"], 1);
    assert_eq!(answer["handle"], "86.1000/PKG-1");
    // The restricted value is absent; the controllers are HS_ADMIN at 100.
    assert_eq!(indexes(&answer), [1, 2, 3, 100]);
    let url = &answer["values"][0];
    assert_eq!(url["type"], "URL");
    assert_eq!(
        url["data"],
        json!({"format": "string", "value": "https://cssd.example/pkg-1"})
    );
    assert_eq!(url["ttl"], 3600);
    let timestamp = url["timestamp"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{timestamp}"
    );
    assert_eq!(
        url.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["index", "type", "data", "ttl", "timestamp"]
    );
    let admin = &answer["values"][3];
    assert_eq!(admin["type"], "HS_ADMIN");
    assert_eq!(
        admin["data"],
        json!({"format": "admin", "value": {"handle": cssd.did().to_string(), "index": 0, "permissions": "011111110011"}})
    );
    assert!(!answer.to_string().contains(SECRET));

    // Handle.Net parameters that change nothing here are accepted.
    let reply = node.get("/api/handles/86.1000/PKG-1?pretty").await;
    assert_eq!(reply.expect(200)["handle"], "86.1000/PKG-1");
    // Percent-encoded, the same.
    assert_eq!(
        node.get("/api/handles/86.1000%2FPKG-1").await.expect(200),
        answer
    );
}

#[tokio::test]
async fn filters_by_type_and_index() {
    let cssd = KeyPair::generate();
    let node = node_with_record(&cssd, &KeyPair::generate()).await;
    let get = |q: &'static str| {
        let node = &node;
        async move {
            node.get(&format!("/api/handles/86.1000/PKG-1?{q}"))
                .await
                .expect(200)
        }
    };
    assert_eq!(indexes(&get("type=URL").await), [1]);
    assert_eq!(indexes(&get("type=url&type=EMAIL").await), [1, 2]);
    assert_eq!(indexes(&get("index=3").await), [3]);
    assert_eq!(indexes(&get("index=3&index=1").await), [1, 3]);
    assert_eq!(indexes(&get("type=EMAIL&index=3").await), [2, 3]);
    assert_eq!(indexes(&get("type=HS_ADMIN").await), [100]);
    assert_eq!(indexes(&get("index=100").await), [100]);
    // The restricted value cannot be selected without a signature.
    let none = get("index=4").await;
    assert_eq!(none["responseCode"], 200, "values not found: {none}");
    assert_eq!(none["handle"], "86.1000/PKG-1");
    assert_eq!(none["values"], json!([]));
    let none = get("type=NOPE").await;
    assert_eq!(none["responseCode"], 200);

    let bad = node.get("/api/handles/86.1000/PKG-1?index=one").await;
    let json = bad.expect_error(400, "badRequest");
    assert_eq!(json["responseCode"], 2);
}

#[tokio::test]
async fn not_found_invalid_and_not_responsible() {
    let cssd = KeyPair::generate();
    let node = node_with_record(&cssd, &KeyPair::generate()).await;

    let missing = node.get("/api/handles/86.1000/PKG-404").await;
    let json = missing.expect_error(404, "notFound");
    assert_eq!(json["responseCode"], 100);
    assert_eq!(json["handle"], "86.1000/PKG-404");
    // Under a sub-prefix of a prefix of this node: still this node's.
    assert_eq!(
        node.get("/api/handles/86.1000.23/X").await.expect(404)["responseCode"],
        100
    );

    let invalid = node.get("/api/handles/86..1000/X").await;
    let json = invalid.expect_error(400, "invalidHandle");
    assert_eq!(json["responseCode"], 102);
    let message = json["message"].as_str().unwrap();
    assert!(
        message.contains("segment 2"),
        "the IdError names the fault: {message}"
    );
    for bad in [
        "/api/handles/",
        "/api/handles/no-suffix",
        "/api/handles/mailto:x@y",
        "/api/handles/%ZZ",
        "/api/handles/%FF%FE",
    ] {
        let json = node.get(bad).await.expect_error(400, "invalidHandle");
        assert_eq!(json["responseCode"], 102, "{bad}: {json}");
    }

    let elsewhere = node.get("/api/handles/99.1/X").await;
    let json = elsewhere.expect_error(400, "notResponsible");
    assert_eq!(json["responseCode"], 301);
    assert_eq!(json["handle"], "99.1/X");
    assert_eq!(
        node.get("/api/handles/urn:oid:1.3.6.1").await.expect(400)["responseCode"],
        301
    );
}

#[tokio::test]
async fn every_identifier_syntax_resolves() {
    let maker = KeyPair::generate();
    let node = Node::start();
    node.prefix("urn:oid:1.2.156", &maker).await;
    node.prefix("gs1:9506000", &maker).await;
    for id in ["urn:oid:1.2.156.112604.1", "/01/09506000134352/10/LOT%2F7"] {
        node.accept(
            "identifier.register",
            json!({"id": id, "values": [value(1, "URL", "https://maker.example/x")]}),
            &[&maker],
        )
        .await;
    }
    let oid = node
        .get("/api/handles/urn:oid:1.2.156.112604.1")
        .await
        .expect(200);
    assert_eq!(
        (oid["responseCode"].as_u64(), oid["handle"].as_str()),
        (Some(1), Some("urn:oid:1.2.156.112604.1"))
    );
    // The OID URN's scheme is case-insensitive.
    assert_eq!(
        node.get("/api/handles/URN:OID:1.2.156.112604.1")
            .await
            .expect(200),
        oid
    );
    // GS1: element string, Digital Link path (after a `/` or percent-encoded).
    let canonical = "/01/09506000134352/10/LOT%2F7";
    for path in [
        "/api/handles/(01)09506000134352(10)LOT%2F7",
        "/api/handles//01/09506000134352/10/LOT%252F7",
        "/api/handles/%2F01%2F09506000134352%2F10%2FLOT%252F7",
    ] {
        let answer = node.get(path).await.expect(200);
        assert_eq!(answer["handle"], canonical, "{path}");
    }
    // A wrong GTIN check digit is an invalid handle naming the expected digit.
    let json = node
        .get("/api/handles/(01)09506000134353")
        .await
        .expect_error(400, "invalidHandle");
    assert!(
        json["message"].as_str().unwrap().contains("expected 2"),
        "{json}"
    );
}

#[tokio::test]
async fn restricted_values_need_a_reader_signature() {
    let cssd = KeyPair::generate();
    let hospital = KeyPair::generate();
    let stranger = KeyPair::generate();
    let node = node_with_record(&cssd, &hospital).await;
    let uri = "/api/handles/86.1000/PKG-1";

    // A reader's fresh signature: the value is there, and the answer is not cached.
    let reply = node.get_signed(uri, &hospital, 0).await;
    let answer = reply.expect(200);
    assert_eq!(indexes(&answer), [1, 2, 3, 4, 100]);
    assert_eq!(answer["values"][3]["type"], "PATIENT");
    assert_eq!(
        answer["values"][3]["data"],
        json!({"format": "string", "value": SECRET})
    );
    assert_eq!(answer["values"][3]["ttl"], 60);
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    // With a filter, and a signature over the query.
    let filtered = node
        .get_signed(&format!("{uri}?type=PATIENT"), &hospital, 0)
        .await
        .expect(200);
    assert_eq!(indexes(&filtered), [4]);

    // Unsigned, then the cached unsigned answer: absent.
    for _ in 0..2 {
        let answer = node.get(uri).await.expect(200);
        assert_eq!(indexes(&answer), [1, 2, 3, 100]);
        assert!(!answer.to_string().contains(SECRET));
    }
    // Signed by a DID that is not a reader: absent.
    let answer = node.get_signed(uri, &stranger, 0).await.expect(200);
    assert_eq!(indexes(&answer), [1, 2, 3, 100]);
    // Signed by the reader, but more than 5 minutes ago: absent.
    let answer = node.get_signed(uri, &hospital, 301).await.expect(200);
    assert!(!answer.to_string().contains(SECRET));
    // Still fresh at 4 minutes.
    assert!(
        node.get_signed(uri, &hospital, 240)
            .await
            .expect(200)
            .to_string()
            .contains(SECRET)
    );
    // A signature made for another target.
    let other = sign_get("/api/handles/86.1000/PKG-2", &hospital, 0);
    let answer = node
        .get_with(
            uri,
            &[
                ("signature-input", &other.signature_input),
                ("signature", &other.signature),
            ],
        )
        .await
        .expect(200);
    assert!(!answer.to_string().contains(SECRET));
    // A tampered signature value.
    let good = sign_get(uri, &hospital, 0);
    let bytes = good.signature.strip_prefix("medid=:").unwrap();
    let flipped = format!(
        "medid=:{}{}",
        if bytes.starts_with('A') { "B" } else { "A" },
        &bytes[1..]
    );
    let answer = node
        .get_with(
            uri,
            &[
                ("signature-input", &good.signature_input),
                ("signature", &flipped),
            ],
        )
        .await
        .expect(200);
    assert!(!answer.to_string().contains(SECRET));
    // A tampered Signature-Input (the key swapped for the stranger's).
    let swapped = good
        .signature_input
        .replace(&hospital.did().to_string(), &stranger.did().to_string());
    let answer = node
        .get_with(
            uri,
            &[
                ("signature-input", &swapped),
                ("signature", &good.signature),
            ],
        )
        .await
        .expect(200);
    assert!(!answer.to_string().contains(SECRET));
    // Garbage signature fields change nothing either.
    let answer = node
        .get_with(uri, &[("signature-input", "(((("), ("signature", "x")])
        .await
        .expect(200);
    assert_eq!(indexes(&answer), [1, 2, 3, 100]);
}

#[tokio::test]
async fn an_erased_payload_is_shown_without_data() {
    let cssd = KeyPair::generate();
    let hospital = KeyPair::generate();
    let node = node_with_record(&cssd, &hospital).await;
    // Erase the payload the way the registry does: its file goes.
    let restricted = node.path.join("restricted");
    for file in std::fs::read_dir(&restricted).unwrap() {
        std::fs::remove_file(file.unwrap().path()).unwrap();
    }
    let answer = node
        .get_signed("/api/handles/86.1000/PKG-1?index=4", &hospital, 0)
        .await
        .expect(200);
    let value = &answer["values"][0];
    assert_eq!(value["index"], 4);
    assert_eq!(value["data"], json!({"format": "string", "value": ""}));
    assert!(
        value["note"].as_str().unwrap().starts_with("erased"),
        "{value}"
    );
}

#[tokio::test]
async fn own_controllers_come_first_in_hs_admin() {
    let cssd = KeyPair::generate();
    let owner = KeyPair::generate();
    let node = Node::start();
    node.prefix("86.1000", &cssd).await;
    node.accept(
        "identifier.register",
        json!({
            "id": "86.1000/OWNED",
            "values": [value(1, "URL", "https://a.example"), value(100, "DESC", "occupies 100")],
            "controllers": [owner.did().to_string()],
        }),
        &[&cssd],
    )
    .await;
    let answer = node.get("/api/handles/86.1000/OWNED").await.expect(200);
    assert_eq!(indexes(&answer), [1, 100, 101, 102]);
    assert_eq!(answer["values"][1]["type"], "DESC");
    assert_eq!(
        answer["values"][2]["data"]["value"]["handle"],
        owner.did().to_string()
    );
    assert_eq!(
        answer["values"][3]["data"]["value"]["handle"],
        cssd.did().to_string()
    );
}
