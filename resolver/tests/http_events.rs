//! EPCIS capture and query, traces, recalls and patient privacy over HTTP, on a real
//! node: receipts and idempotent re-capture, refusals naming the event and pointer,
//! query parameters and paging, redaction by RFC 9421 signature, proofs checked
//! offline from the verifier key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod http_fixture;

use axum::body::Body;
use axum::http::{Method, Request};
use http_fixture::{HOST, Node, Reply};
use medid_did::KeyPair;
use medid_registry::event::epcis::bizstep;
use medid_registry::event::report::verify_report;
use medid_registry::event::seal_and_sign;
use serde_json::{Value, json};

async fn capture(node: &Node, events: &[Value], key: &KeyPair) -> Reply {
    let mut signed = Vec::new();
    let mut payloads = Vec::new();
    for event in events {
        let (event, mut sealed) = seal_and_sign(event, key).unwrap();
        signed.push(event);
        payloads.append(&mut sealed);
    }
    post_capture(node, &signed, &payloads).await
}

async fn post_capture(
    node: &Node,
    events: &[Value],
    payloads: &[medid_registry::op::RestrictedPayload],
) -> Reply {
    let body = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-01T00:00:00Z",
        "epcisBody": {"eventList": events},
        "medid:restricted": payloads,
    });
    node.send(
        Request::builder()
            .method(Method::POST)
            .uri("/capture")
            .header("host", HOST)
            .header("content-type", "application/ld+json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    )
    .await
}

async fn register(node: &Node, key: &KeyPair, role: &str) {
    node.accept(
        "did.register",
        json!({"did": key.did().to_string(), "name": role, "role": role}),
        &[key],
    )
    .await;
}

fn t(minute: u32) -> String {
    format!("2026-03-01T10:{minute:02}:00Z")
}

fn load(n: u32, packs: &[&str], minute: u32) -> Value {
    json!({"type": "AggregationEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+00:00",
           "parentID": format!("hdl:86.1000.23/LOAD-{n}"),
           "childEPCs": packs.iter().map(|p| format!("hdl:86.1000.23/{p}")).collect::<Vec<_>>(),
           "action": "ADD", "bizStep": bizstep::STERILIZING,
           "medid:sterilizer": "hdl:86.1000.23/ST-1"})
}

fn result(n: u32, bi: &str, minute: u32) -> Value {
    json!({"type": "ObjectEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+00:00",
           "epcList": [format!("hdl:86.1000.23/LOAD-{n}")], "action": "OBSERVE",
           "bizStep": bizstep::STERILIZING, "medid:sterilizer": "hdl:86.1000.23/ST-1",
           "medid:chemicalIndicator": "pass", "medid:biologicalIndicator": bi,
           "sensorElementList": [{"sensorReport": [
               {"type": "Temperature", "value": 134, "uom": "CEL"},
               {"type": "Pressure", "value": 304, "uom": "KPA"}]}]})
}

fn use_on(pack: &str, patient: &str, minute: u32, readers: &[&KeyPair]) -> Value {
    let mut event = json!({"type": "ObjectEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+00:00",
           "epcList": [format!("hdl:86.1000.23/{pack}")], "action": "OBSERVE",
           "bizStep": bizstep::USING, "medid:patient": patient, "medid:procedure": "hip replacement"});
    if !readers.is_empty() {
        event["medid:readers"] = json!(
            readers
                .iter()
                .map(|k| k.did().to_string())
                .collect::<Vec<_>>()
        );
    }
    event
}

struct Scene {
    node: Node,
    cssd: KeyPair,
    hospital: KeyPair,
    surgeon: KeyPair,
    stranger: KeyPair,
}

/// Load 1 (PKG-A, PKG-B) passes; A used on P-1, B on P-2. Load 2 (PKG-A, PKG-C) fails;
/// A used on P-3 before the result; C is not used.
async fn scene() -> Scene {
    let node = Node::start();
    let (cssd, hospital, surgeon, stranger) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    register(&node, &cssd, "sterilization-center").await;
    register(&node, &hospital, "hospital").await;
    register(&node, &surgeon, "person").await;
    capture(
        &node,
        &[load(1, &["PKG-A", "PKG-B"], 0), result(1, "pass", 1)],
        &cssd,
    )
    .await
    .expect(201);
    capture(
        &node,
        &[
            use_on("PKG-A", "P-1", 2, &[&surgeon]),
            use_on("PKG-B", "P-2", 3, &[]),
        ],
        &hospital,
    )
    .await
    .expect(201);
    capture(&node, &[load(2, &["PKG-A", "PKG-C"], 4)], &cssd)
        .await
        .expect(201);
    capture(&node, &[use_on("PKG-A", "P-3", 5, &[])], &hospital)
        .await
        .expect(201);
    capture(&node, &[result(2, "fail", 6)], &cssd)
        .await
        .expect(201);
    Scene {
        node,
        cssd,
        hospital,
        surgeon,
        stranger,
    }
}

fn patients(report: &Value) -> Vec<String> {
    report["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["patient"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn capture_answers_receipts_and_is_idempotent() {
    let node = Node::start();
    let cssd = KeyPair::generate();
    register(&node, &cssd, "sterilization-center").await;
    let (signed, _) = seal_and_sign(&load(1, &["PKG-A"], 0), &cssd).unwrap();
    let first = post_capture(&node, std::slice::from_ref(&signed), &[])
        .await
        .expect(201);
    let receipt = &first["receipts"][0];
    assert_eq!(receipt["existing"], false);
    let again = post_capture(&node, &[signed], &[]).await.expect(201);
    assert_eq!(again["receipts"][0]["existing"], true);
    assert_eq!(again["receipts"][0]["leafIndex"], receipt["leafIndex"]);
    assert_eq!(again["receipts"][0]["entryHash"], receipt["entryHash"]);
    // Signed again (another proof): still the same event by its hash ID.
    let (resigned, _) = seal_and_sign(&load(1, &["PKG-A"], 0), &cssd).unwrap();
    let third = post_capture(&node, &[resigned], &[]).await.expect(201);
    assert_eq!(third["receipts"][0]["existing"], true);
}

#[tokio::test]
async fn bad_events_are_refused_naming_the_event_and_pointer() {
    let node = Node::start();
    let cssd = KeyPair::generate();
    register(&node, &cssd, "sterilization-center").await;
    let mut bad = load(2, &["PKG-A"], 0);
    bad["action"] = json!("SHOUT");
    let reply = capture(&node, &[load(1, &["PKG-A"], 0), bad], &cssd).await;
    let error = reply.expect_error(422, "schema");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("events[1] (ni:///sha-256;"),
        "{message}"
    );
    assert!(message.contains("/action"), "{message}");
    // Nothing of a refused capture is written.
    let all = node.get("/events").await.expect(200);
    assert_eq!(
        all["epcisBody"]["queryResults"]["resultsBody"]["eventList"],
        json!([])
    );
    // One signature that does not match, among good ones: the capture's signatures are
    // checked as one batch, and the refusal still names the event at fault.
    let signed: Vec<Value> = (5..8)
        .map(|n| seal_and_sign(&load(n, &["PKG-A"], 0), &cssd).unwrap().0)
        .collect();
    let mut swapped = signed.clone();
    swapped[1]["medid:proof"]["proofValue"] = signed[2]["medid:proof"]["proofValue"].clone();
    let error = post_capture(&node, &swapped, &[])
        .await
        .expect_error(422, "proof");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("events[1] ("), "{message}");
    assert!(message.contains("does not match"), "{message}");
    // Unsigned, and signed by an unregistered DID.
    let mut unsigned = load(3, &["PKG-A"], 0);
    unsigned["eventID"] = json!("urn:uuid:6f1c3c2e-0000-4000-8000-000000000001");
    post_capture(&node, &[unsigned], &[])
        .await
        .expect_error(422, "proof");
    let stranger = KeyPair::generate();
    let reply = capture(&node, &[load(4, &["PKG-A"], 0)], &stranger).await;
    let error = reply.expect_error(404, "notFound");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("events[0] ("),
        "{error}"
    );
    // Not JSON, not events, a bad handle.
    node.send(
        Request::builder()
            .method(Method::POST)
            .uri("/capture")
            .header("host", HOST)
            .body(Body::from("{"))
            .unwrap(),
    )
    .await
    .expect_error(400, "invalidJson");
    let mut bad_handle = load(5, &["PKG-A"], 0);
    bad_handle["parentID"] = json!("hdl:86.1000.23/");
    capture(&node, &[bad_handle], &cssd)
        .await
        .expect_error(422, "invalid");
}

#[tokio::test]
async fn queries_filter_and_page() {
    let s = scene().await;
    let events = |reply: &Value| {
        reply["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            .as_array()
            .unwrap()
            .clone()
    };
    let all = s.node.get("/events").await.expect(200);
    assert_eq!(all["type"], "EPCISQueryDocument");
    assert_eq!(events(&all).len(), 7);
    let uses = s
        .node
        .get("/events?EQ_bizStep=urn:medid:bizstep:using")
        .await
        .expect(200);
    assert_eq!(events(&uses).len(), 3);
    let a = s
        .node
        .get("/events?MATCH_epc=hdl:86.1000.23/PKG-A")
        .await
        .expect(200);
    assert_eq!(events(&a).len(), 2, "uses of A (epcList only)");
    let any = s
        .node
        .get("/events?MATCH_anyEPC=86.1000.23/PKG-A")
        .await
        .expect(200);
    assert_eq!(events(&any).len(), 4, "loads and uses of A");
    let by_path = s
        .node
        .get("/epcs/86.1000.23/PKG-A/events")
        .await
        .expect(200);
    assert_eq!(events(&by_path), events(&any));
    let parent = s
        .node
        .get("/events?MATCH_parentID=hdl:86.1000.23/LOAD-2")
        .await
        .expect(200);
    assert_eq!(events(&parent).len(), 1);
    let window = s
        .node
        .get("/events?GE_eventTime=2026-03-01T10:02:00Z&LT_eventTime=2026-03-01T10:04:00Z")
        .await
        .expect(200);
    assert_eq!(events(&window).len(), 2);
    let id = events(&parent)[0]["eventID"].as_str().unwrap().to_owned();
    let by_id = s
        .node
        .get(&format!("/events?EQ_eventID={id}"))
        .await
        .expect(200);
    assert_eq!(events(&by_id)[0]["eventID"], id.as_str());
    let desc = s
        .node
        .get("/events?orderBy=eventTime&orderDirection=DESC&eventCountLimit=2")
        .await
        .expect(200);
    assert_eq!(events(&desc).len(), 2);
    assert_eq!(events(&desc)[0]["eventTime"], t(6));
    // Paging: three pages of 3, 3 and 1, following the Link header.
    let mut uri = "/events?perPage=3".to_owned();
    let mut pages = Vec::new();
    loop {
        let reply = s.node.get(&uri).await;
        let body = reply.expect(200);
        pages.push(events(&body).len());
        match reply.header("link") {
            Some(link) => {
                uri = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            }
            None => break,
        }
    }
    assert_eq!(pages, [3, 3, 1]);
    s.node
        .get("/events?EQ_bizStep=a&bogus=1")
        .await
        .expect_error(400, "badRequest");
    s.node
        .get("/events?GE_eventTime=yesterday")
        .await
        .expect_error(400, "badRequest");
}

#[tokio::test]
async fn traces_show_patients_only_to_their_readers() {
    let s = scene().await;
    let uri = "/api/trace?from=P-1&direction=reverse";
    // Unsigned: counts only. P-1 (pack A, load 1) reaches P-2 (pack B, load 1), not P-3.
    let anonymous = s.node.get(uri).await.expect(200);
    assert_eq!(anonymous["patientCount"], 2);
    assert_eq!(anonymous["hiddenPatients"], 2);
    assert_eq!(anonymous["patients"], json!([]));
    assert_eq!(anonymous["kind"], "patient");
    assert_eq!(
        s.node.get(uri).await.header("cache-control"),
        Some("private, no-store")
    );
    // The hospital recorded both uses; the surgeon was granted P-1's.
    let hospital = s.node.get_signed(uri, &s.hospital, 0).await.expect(200);
    assert_eq!(patients(&hospital), ["P-1", "P-2"]);
    let surgeon = s.node.get_signed(uri, &s.surgeon, 0).await.expect(200);
    assert_eq!(patients(&surgeon), ["P-1"]);
    assert_eq!(surgeon["hiddenPatients"], 1);
    let stranger = s.node.get_signed(uri, &s.stranger, 0).await.expect(200);
    assert_eq!(stranger["hiddenPatients"], 2);
    let loads: Vec<&str> = hospital["loads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(loads, ["86.1000.23/LOAD-1"]);
    // Forward from load 2: P-3 only (A's use in load 1's window is not load 2's).
    let forward = s
        .node
        .get_signed(
            "/api/trace?from=hdl:86.1000.23/LOAD-2&direction=forward",
            &s.hospital,
            0,
        )
        .await
        .expect(200);
    assert_eq!(patients(&forward), ["P-3"]);
    s.node
        .get("/api/trace?from=86.1000.23/NOTHING")
        .await
        .expect_error(404, "notFound");
    s.node
        .get("/api/trace?direction=sideways&from=x")
        .await
        .expect_error(400, "badRequest");
    let _ = &s.cssd;
}

#[tokio::test]
async fn a_failed_indicator_recalls_the_unused_packs_and_names_the_patients() {
    let s = scene().await;
    let report = s
        .node
        .get_signed("/api/recall?sterilizer=86.1000.23/ST-1", &s.hospital, 0)
        .await
        .expect(200);
    let loads: Vec<&str> = report["loads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(loads, ["86.1000.23/LOAD-2"], "load 1 passed");
    assert_eq!(patients(&report), ["P-3"]);
    let status = |id: &str| {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("86.1000.23/PKG-C"), "recalled");
    assert_eq!(status("86.1000.23/PKG-A"), "used");
}

#[tokio::test]
async fn trace_proofs_verify_offline_from_the_verifier_key() {
    let s = scene().await;
    let report = s
        .node
        .get("/api/trace?from=hdl:86.1000.23/LOAD-1&direction=forward&proofs=true")
        .await
        .expect(200);
    let node_info = s.node.get("/api/node").await.expect(200);
    let vkey = node_info["verifierKey"].as_str().unwrap();
    let proven = verify_report(&report, vkey).unwrap();
    assert!(proven >= 4, "{proven}");
    // Another event's entry in place of one: refused.
    let mut tampered = report.clone();
    let proofs = tampered["proofs"].as_object_mut().unwrap();
    let keys: Vec<String> = proofs.keys().cloned().collect();
    let other = proofs[&keys[1]]["entry"].clone();
    proofs.get_mut(&keys[0]).unwrap()["entry"] = other;
    assert!(verify_report(&tampered, vkey).is_err());
    // Another key: refused.
    let other_key = vkey.replacen("test.medid.example", "other.example", 1);
    assert!(verify_report(&report, &other_key).is_err());
}

#[tokio::test]
async fn resolution_shows_the_status_of_recalled_and_used_packs() {
    let s = scene().await;
    s.node.prefix("86.1000.23", &s.cssd).await;
    for pack in ["PKG-A", "PKG-C"] {
        s.node
            .accept(
                "identifier.register",
                json!({"id": format!("86.1000.23/{pack}"),
                       "values": [http_fixture::value(1, "DESC", "instrument pack")]}),
                &[&s.cssd],
            )
            .await;
    }
    let status = |answer: &Value| {
        answer["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["type"] == "STATUS")
            .unwrap()["data"]["value"]
            .clone()
    };
    let c = s
        .node
        .get("/api/handles/86.1000.23/PKG-C")
        .await
        .expect(200);
    assert_eq!(status(&c), "recalled");
    let a = s
        .node
        .get("/api/handles/86.1000.23/PKG-A")
        .await
        .expect(200);
    assert_eq!(status(&a), "used");
    // Reprocessed in a load that passes: sterile again, and the cached answer is dropped.
    capture(
        &s.node,
        &[load(3, &["PKG-C"], 10), result(3, "pass", 11)],
        &s.cssd,
    )
    .await
    .expect(201);
    let c = s
        .node
        .get("/api/handles/86.1000.23/PKG-C")
        .await
        .expect(200);
    assert_eq!(status(&c), "sterile");
}

#[tokio::test]
async fn a_sterilizer_trace_takes_a_time_range() {
    let s = scene().await;
    let loads = |report: &Value| -> Vec<String> {
        report["loads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = s
        .node
        .get("/api/trace?from=86.1000.23/ST-1&direction=forward")
        .await
        .expect(200);
    assert_eq!(all["kind"], "sterilizer");
    assert_eq!(loads(&all), ["86.1000.23/LOAD-1", "86.1000.23/LOAD-2"]);
    let later = s
        .node
        .get("/api/trace?from=86.1000.23/ST-1&direction=forward&since=2026-03-01T10:03:00Z&until=2026-03-01T11:00:00Z")
        .await
        .expect(200);
    assert_eq!(loads(&later), ["86.1000.23/LOAD-2"]);
    let earlier = s
        .node
        .get("/api/trace?from=86.1000.23/ST-1&direction=forward&until=2026-03-01T10:03:00Z")
        .await
        .expect(200);
    assert_eq!(loads(&earlier), ["86.1000.23/LOAD-1"]);
}

async fn events_logged(node: &Node) -> usize {
    let all = node.get("/events").await.expect(200);
    all["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_capture_is_all_or_nothing() {
    let node = Node::start();
    let cssd = KeyPair::generate();
    register(&node, &cssd, "sterilization-center").await;
    // A later event by a DID the node does not know: the earlier one is not logged.
    let stranger = KeyPair::generate();
    let (first, _) = seal_and_sign(&load(1, &["PKG-A"], 0), &cssd).unwrap();
    let (second, _) = seal_and_sign(&load(2, &["PKG-B"], 1), &stranger).unwrap();
    let error = post_capture(&node, &[first.clone(), second], &[])
        .await
        .expect_error(404, "notFound");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("events[1] ("), "{message}");
    assert!(
        message.contains("no event of this capture was logged"),
        "{message}"
    );
    assert_eq!(events_logged(&node).await, 0);
    // Two different events under one eventID: refused whole as well.
    let named = |mut event: Value| {
        event["eventID"] = json!("urn:uuid:6f1c3c2e-0000-4000-8000-00000000000a");
        seal_and_sign(&event, &cssd).unwrap().0
    };
    let error = post_capture(
        &node,
        &[named(load(3, &["PKG-A"], 2)), named(load(4, &["PKG-B"], 3))],
        &[],
    )
    .await
    .expect_error(409, "exists");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("events[1] (")
    );
    assert_eq!(events_logged(&node).await, 0);
    // The same events, fixed, go in together; an event captured already is fine.
    let reply = post_capture(&node, std::slice::from_ref(&first), &[])
        .await
        .expect(201);
    assert_eq!(reply["logged"], json!([0]));
    let (third, _) = seal_and_sign(&load(5, &["PKG-C"], 4), &cssd).unwrap();
    let reply = post_capture(&node, &[first, third], &[]).await.expect(201);
    assert_eq!(reply["receipts"][0]["existing"], true);
    assert_eq!(reply["logged"], json!([0, 1]));
    assert_eq!(events_logged(&node).await, 2);
}
