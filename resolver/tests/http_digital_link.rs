//! GS1 Digital Link on a real node: redirects to the default link with a `Link` field,
//! RFC 9264 linksets, and the 400s and 404s.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use http_fixture::{Node, value};
use medid_did::KeyPair;
use serde_json::json;

const GTIN: &str = "09506000134352";

/// A node with GS1 Company Prefix 9506000 and three records of GTIN 09506000134352.
async fn node() -> Node {
    let maker = KeyPair::generate();
    let node = Node::start();
    node.prefix("gs1:9506000", &maker).await;
    // The product: a default link, a product information page and a plain URL.
    node.accept(
        "identifier.register",
        json!({"id": format!("/01/{GTIN}"), "values": [
            value(1, "URL", "https://maker.example/product"),
            value(2, "gs1:pip", "https://maker.example/pip"),
            value(3, "gs1:defaultLink", "https://maker.example/default"),
            value(4, "DESC", "scalpel handle"),
        ]}),
        &[&maker],
    )
    .await;
    // A lot: no gs1:defaultLink, so its lowest-index URL is the default.
    node.accept(
        "identifier.register",
        json!({"id": format!("/01/{GTIN}/10/LOT7"), "values": [
            value(5, "URL", "https://maker.example/lot7-b"),
            value(2, "URL", "https://maker.example/lot7-a"),
            value(9, "gs1:recallStatus", "https://maker.example/lot7/recall"),
        ]}),
        &[&maker],
    )
    .await;
    node.accept(
        "identifier.register",
        json!({"id": format!("/01/{GTIN}/10/LOT7/21/S1"), "values": [value(1, "URL", "https://maker.example/s1")]}),
        &[&maker],
    )
    .await;
    node.accept(
        "identifier.register",
        json!({"id": format!("/01/{GTIN}/21/S9"), "values": [value(1, "DESC", "no link at all")]}),
        &[&maker],
    )
    .await;
    node
}

#[tokio::test]
async fn redirects_to_the_default_link_with_a_link_field() {
    let node = node().await;
    let reply = node.get(&format!("/01/{GTIN}")).await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        reply.header("location"),
        Some("https://maker.example/default")
    );
    let link = reply.header("link").unwrap();
    assert_eq!(
        link,
        "<https://maker.example/default>; rel=\"https://gs1.org/voc/defaultLink\", \
         <https://maker.example/product>; rel=\"related\", \
         <https://maker.example/pip>; rel=\"https://gs1.org/voc/pip\", \
         <http://node.test/01/09506000134352?linkType=linkset>; rel=\"linkset\"; type=\"application/linkset+json\""
    );

    // Without gs1:defaultLink: the lowest-index URL value.
    let reply = node.get(&format!("/01/{GTIN}/10/LOT7")).await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        reply.header("location"),
        Some("https://maker.example/lot7-a")
    );
    let reply = node.get(&format!("/01/{GTIN}/10/LOT7/21/S1")).await;
    assert_eq!(reply.header("location"), Some("https://maker.example/s1"));
    // A link type the record has.
    let reply = node.get(&format!("/01/{GTIN}?linkType=gs1:pip")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.header("location")),
        (307, Some("https://maker.example/pip"))
    );
    let reply = node
        .get(&format!(
            "/01/{GTIN}/10/LOT7?linkType=https://gs1.org/voc/recallStatus"
        ))
        .await;
    assert_eq!(
        reply.header("location"),
        Some("https://maker.example/lot7/recall")
    );
    // One it has not: the default link.
    let reply = node.get(&format!("/01/{GTIN}?linkType=gs1:epil")).await;
    assert_eq!(
        reply.header("location"),
        Some("https://maker.example/default")
    );
    // A record without links.
    node.get(&format!("/01/{GTIN}/21/S9"))
        .await
        .expect_error(404, "noDefaultLink");
}

#[tokio::test]
async fn linksets_when_asked_either_way() {
    let node = node().await;
    let expected = json!({"linkset": [{
        "anchor": "http://node.test/01/09506000134352/10/LOT7",
        "https://gs1.org/voc/defaultLink": [{"href": "https://maker.example/lot7-a"}],
        "related": [{"href": "https://maker.example/lot7-a"}, {"href": "https://maker.example/lot7-b"}],
        "https://gs1.org/voc/recallStatus": [{"href": "https://maker.example/lot7/recall"}],
    }]});
    for reply in [
        node.get(&format!("/01/{GTIN}/10/LOT7?linkType=linkset"))
            .await,
        node.get_with(
            &format!("/01/{GTIN}/10/LOT7"),
            &[("accept", "application/linkset+json")],
        )
        .await,
        node.get(&format!("/01/{GTIN}/10/LOT7?linkType=all")).await,
    ] {
        assert_eq!(reply.expect(200), expected);
        assert_eq!(
            reply.header("content-type"),
            Some("application/linkset+json")
        );
        assert!(reply.header("link").unwrap().contains("rel=\"linkset\""));
    }
}

#[tokio::test]
async fn bad_syntax_wrong_check_digits_and_unknown_keys() {
    let node = node().await;
    let json = node
        .get("/01/09506000134353")
        .await
        .expect_error(400, "invalidIdentifier");
    let message = json["message"].as_str().unwrap();
    assert!(message.contains("expected 2"), "{message}");
    for bad in [
        "/01/123",
        "/01/09506000134352/10",
        "/01/09506000134352/99/x",
        "/01/09506000134352/10/LOT7/10/LOT8",
        "/01/",
    ] {
        node.get(bad).await.expect_error(400, "invalidIdentifier");
    }
    node.get(&format!("/01/{GTIN}/10/LOT8"))
        .await
        .expect_error(404, "notFound");
    // A GTIN under no GS1 Company Prefix of this node.
    node.get("/01/04012345000009")
        .await
        .expect_error(404, "notResponsible");
}
