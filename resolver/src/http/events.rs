//! EPCIS 2.0 capture and query, and the trace API.
//!
//! | endpoint | answers |
//! |---|---|
//! | `POST /capture` | 201 + one receipt per event; 4xx naming the event and pointer |
//! | `GET /events?…` | an EPCIS query document (`SimpleEventQuery` parameters, paged) |
//! | `GET /epcs/{epc}/events` | the same, for every event naming the EPC |
//! | `GET /api/trace?from=&direction=forward\|reverse[&proofs=true][&since=&until=]` | a trace report |
//! | `GET /api/recall?sterilizer=…` or `?lot=…` | the recall report: recalled loads and items, patients reached |
//!
//! A capture body is an EPCIS document (`epcisBody.eventList`), a bare list of events,
//! or `{"eventList": […]}`; the payloads of sealed `medid:patient` values travel in a
//! top-level `medid:restricted` list. Every event is checked (schema, profile,
//! `medid:proof`) and applied to the index as it stands before any is submitted: a bad
//! or refused event refuses the whole capture and nothing is logged (EPCIS 2.0's
//! `rollback` behaviour), naming `events[i]` (and its `eventID`) and the JSON pointer.
//! Only a change racing the capture can refuse an event after that check; the answer
//! then lists which events were logged (`logged`, beside one receipt or refusal each). An event already in the
//! ledger (same CBV hash ID) is answered with its existing receipt (`"existing": true`).
//!
//! Trace and recall reports show a patient's identifier only to a DID that recorded
//! one of the uses or is listed in its `medid:readers`, proven by an HTTP Message
//! Signature (RFC 9421) on the request; everyone else gets `patientCount` and
//! `hiddenPatients`. Such answers are never cached.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use medid_registry::SubmitError;
use medid_registry::event::report::{TraceReport, Viewer};
use medid_registry::event::trace::{self, Trace};
use medid_registry::event::{self, epcis, normalise_epc};
use medid_registry::log::leaf_hash;
use medid_registry::op::{OpError, RestrictedPayload};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::ops::refusal_status;
use super::{AppState, json_response, query_pairs, shorten, signers};

/// Largest capture body.
pub(crate) const MAX_CAPTURE_BYTES: usize = 8 * 1024 * 1024;
/// Most events in one capture.
pub(crate) const MAX_CAPTURE_EVENTS: usize = 10_000;
/// Events per page of a query, by default and at most.
pub(crate) const DEFAULT_PAGE: usize = 100;
/// Most events per page.
pub(crate) const MAX_PAGE: usize = 1000;

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The events and payloads of a capture body.
fn capture_body(value: Value) -> Result<(Vec<Value>, Vec<RestrictedPayload>), ApiError> {
    let (events, restricted) = match value {
        Value::Array(events) => (events, Value::Null),
        Value::Object(mut map) => {
            let restricted = map.remove("medid:restricted").unwrap_or(Value::Null);
            let events = match map.remove("epcisBody") {
                Some(mut body) => body
                    .get_mut("eventList")
                    .map(Value::take)
                    .unwrap_or(Value::Null),
                None => map.remove("eventList").unwrap_or(Value::Null),
            };
            match events {
                Value::Array(events) => (events, restricted),
                _ => {
                    return Err(unprocessable(
                        "schema",
                        "a capture is an EPCIS document (epcisBody.eventList), a list of events, or {\"eventList\": […]}",
                    ));
                }
            }
        }
        _ => {
            return Err(unprocessable(
                "schema",
                "a capture is a JSON object or list",
            ));
        }
    };
    if events.is_empty() {
        return Err(unprocessable("schema", "the capture holds no event"));
    }
    if events.len() > MAX_CAPTURE_EVENTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "tooLarge",
            format!(
                "{} events; at most {MAX_CAPTURE_EVENTS} per capture",
                events.len()
            ),
        ));
    }
    let restricted: Vec<RestrictedPayload> = match restricted {
        Value::Null => Vec::new(),
        other => serde_json::from_value(other).map_err(|e| {
            unprocessable(
                "schema",
                format!(
                    "/medid:restricted: not a list of payloads {{commitment, salt, data}}: {e}"
                ),
            )
        })?,
    };
    Ok((events, restricted))
}

fn event_name(i: usize, event: &Value) -> String {
    match event.get("eventID").and_then(Value::as_str) {
        Some(id) => format!("events[{i}] ({})", shorten(id)),
        None => format!("events[{i}]"),
    }
}

pub(super) async fn capture(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match accept_capture(&state, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn accept_capture(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "tooLarge",
            format!("the capture is larger than {MAX_CAPTURE_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_CAPTURE_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_CAPTURE_BYTES)
        .await
        .map_err(|_| too_large())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalidJson",
            format!("the body is not JSON: {e}"),
        )
    })?;
    let (events, restricted) = capture_body(value)?;
    // Check the capture whole first (CPU work, off the async threads): a bad event
    // refuses it before anything is written.
    let index = state.index().clone();
    let (events, prepared) = tokio::task::spawn_blocking(move || {
        let prepared = event::prepare_capture(&index, &events, &restricted);
        (events, prepared)
    })
    .await
    .map_err(ApiError::internal)?;
    let prepared = prepared.map_err(|(i, e)| {
        let at = i.map_or_else(
            || "medid:restricted".to_owned(),
            |i| event_name(i, &events[i]),
        );
        ApiError::new(
            refusal_status(&e),
            e.code(),
            format!("{at}: {e}; no event of this capture was logged"),
        )
    })?;
    let waiting = state.inner.sequencer.submit_checked(prepared);
    let mut receipts = Vec::with_capacity(waiting.len());
    let mut refused: Option<StatusCode> = None;
    for (i, answer) in waiting.into_iter().enumerate() {
        let answer = answer
            .await
            .unwrap_or_else(|_| Err(SubmitError::Failed("the sequencer has stopped".into())));
        let name = event_name(i, &events[i]);
        match answer {
            Ok(receipt) => {
                let mut value = serde_json::to_value(&receipt).unwrap_or_default();
                value["event"] = json!(i);
                value["existing"] = json!(false);
                receipts.push(value);
            }
            Err(SubmitError::Refused(OpError::AlreadyLogged { event_id, leaf })) => {
                let entry = state.inner.log.entry(leaf).map_err(ApiError::log)?;
                let size = state.inner.log.size().map_err(ApiError::log)?;
                receipts.push(json!({
                    "event": i,
                    "eventID": event_id,
                    "leafIndex": leaf,
                    "entryHash": leaf_hash(&entry),
                    "treeSize": size,
                    "existing": true,
                }));
            }
            Err(SubmitError::Refused(error)) => {
                refused.get_or_insert(refusal_status(&error));
                receipts.push(json!({
                    "event": i,
                    "error": error.code(),
                    "message": format!("{name}: {error}"),
                }));
            }
            Err(failure) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    failure.to_string(),
                ));
            }
        }
    }
    let status = refused.unwrap_or(StatusCode::CREATED);
    // Only a change racing the capture (its signer deactivated, an eventID taken by
    // another capture meanwhile) refuses an event after the check: the answer then
    // says exactly which events were logged.
    let logged: Vec<Value> = receipts
        .iter()
        .filter(|r| r.get("error").is_none())
        .filter_map(|r| r.get("event").cloned())
        .collect();
    Ok(json_response(
        status,
        &json!({ "receipts": receipts, "logged": logged }),
    ))
}

/// The query parameters of `GET /events`.
#[derive(Debug, Default)]
struct EventQuery {
    since: Option<i64>,
    before: Option<i64>,
    biz_steps: Vec<String>,
    dispositions: Vec<String>,
    epcs: Vec<String>,
    parents: Vec<String>,
    any_epcs: Vec<String>,
    event_ids: Vec<String>,
    descending: bool,
    limit: Option<usize>,
    per_page: usize,
    after: Option<(i64, u64)>,
}

fn list(value: &str) -> Vec<String> {
    value
        .split('|')
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn epcs(value: &str, name: &str) -> Result<Vec<String>, ApiError> {
    list(value)
        .iter()
        .map(|v| {
            normalise_epc(v)
                .map_err(|e| ApiError::bad_request(format!("`{name}={}`: {e}", shorten(v))))
        })
        .collect()
}

fn time_param(value: &str, name: &str) -> Result<i64, ApiError> {
    epcis::parse_time(value, name).map_err(|e| ApiError::bad_request(format!("`{name}`: {e}")))
}

fn count(value: &str, name: &str) -> Result<usize, ApiError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{name}={}` is not a positive integer",
                shorten(value)
            ))
        })
}

impl EventQuery {
    fn parse(uri: &Uri) -> Result<Self, ApiError> {
        let mut query = EventQuery {
            per_page: DEFAULT_PAGE,
            ..EventQuery::default()
        };
        for (name, value) in query_pairs(uri) {
            match name.as_str() {
                "GE_eventTime" => query.since = Some(time_param(&value, &name)?),
                "LT_eventTime" => query.before = Some(time_param(&value, &name)?),
                "EQ_bizStep" => query
                    .biz_steps
                    .extend(list(&value).iter().map(|s| epcis::short_vocabulary(s))),
                "EQ_disposition" => query
                    .dispositions
                    .extend(list(&value).iter().map(|s| epcis::short_vocabulary(s))),
                "MATCH_epc" => query.epcs.extend(epcs(&value, &name)?),
                "MATCH_parentID" => query.parents.extend(epcs(&value, &name)?),
                "MATCH_anyEPC" => query.any_epcs.extend(epcs(&value, &name)?),
                "EQ_eventID" => query.event_ids.extend(list(&value)),
                "orderBy" => {
                    if value != "eventTime" {
                        return Err(ApiError::bad_request(format!(
                            "`orderBy={}`: events are ordered by eventTime",
                            shorten(&value)
                        )));
                    }
                }
                "orderDirection" => match value.as_str() {
                    "ASC" => query.descending = false,
                    "DESC" => query.descending = true,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "`orderDirection={}`: ASC or DESC",
                            shorten(other)
                        )));
                    }
                },
                "eventCountLimit" => query.limit = Some(count(&value, &name)?),
                "perPage" => query.per_page = count(&value, &name)?.min(MAX_PAGE),
                "nextPageToken" => {
                    let parsed = value
                        .split_once('.')
                        .and_then(|(t, l)| Some((t.parse::<i64>().ok()?, l.parse::<u64>().ok()?)));
                    query.after = Some(parsed.ok_or_else(|| {
                        ApiError::bad_request("`nextPageToken` is not a token this node gave")
                    })?);
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "`{}` is not a query parameter medid supports (GE_eventTime, LT_eventTime, EQ_bizStep, EQ_disposition, MATCH_epc, MATCH_parentID, MATCH_anyEPC, EQ_eventID, orderBy, orderDirection, eventCountLimit, perPage, nextPageToken)",
                        shorten(other)
                    )));
                }
            }
        }
        Ok(query)
    }

    /// Whether an event matches every filter.
    fn matches(&self, facts: &epcis::EventFacts, event: &Map<String, Value>) -> bool {
        let any = |wanted: &[String], have: &[&String]| {
            wanted.is_empty() || wanted.iter().any(|w| have.contains(&w))
        };
        let step = facts.biz_step.iter().collect::<Vec<_>>();
        let disposition = facts.disposition.iter().collect::<Vec<_>>();
        let epcs = facts.epcs.iter().collect::<Vec<_>>();
        let parent = facts.parent.iter().collect::<Vec<_>>();
        let all: Vec<&String> = facts
            .epcs
            .iter()
            .chain(&facts.children)
            .chain(&facts.parent)
            .collect();
        let id = event.get("eventID").and_then(Value::as_str).unwrap_or("");
        self.since.is_none_or(|t| facts.time >= t)
            && self.before.is_none_or(|t| facts.time < t)
            && any(&self.biz_steps, &step)
            && any(&self.dispositions, &disposition)
            && any(&self.epcs, &epcs)
            && any(&self.parents, &parent)
            && any(&self.any_epcs, &all)
            && (self.event_ids.is_empty() || self.event_ids.iter().any(|e| e == id))
    }
}

/// The ledger indexes of candidate events, in (time, index) order: by eventID, by the
/// EPCs named, or by time.
/// Most events one query request reads by time before it answers with a next page.
const SCAN_LIMIT: usize = 10_000;

/// The ledger positions of candidate events, in (time, index) order, and whether the
/// walk stopped at [`SCAN_LIMIT`]: by eventID, by the EPCs named, or by time.
fn candidates(state: &AppState, query: &EventQuery) -> Result<(Vec<(i64, u64)>, bool), ApiError> {
    let index = state.index();
    let mut found: BTreeSet<(i64, u64)> = BTreeSet::new();
    let internal = |e: medid_registry::IndexError| ApiError::internal(e);
    let named: Vec<&String> = query
        .epcs
        .iter()
        .chain(&query.parents)
        .chain(&query.any_epcs)
        .collect();
    let since = query.since.unwrap_or(i64::MIN);
    if !query.event_ids.is_empty() {
        for id in &query.event_ids {
            if let Some(leaf) = index
                .get_raw(&event::event_id_key(id))
                .map_err(internal)?
                .as_deref()
                .and_then(event::leaf_of)
            {
                found.insert((0, leaf));
            }
        }
        return Ok((found.into_iter().collect(), false));
    }
    if !named.is_empty() {
        for epc in named {
            let start = event::position_key("ee", epc, since, 0);
            let end = medid_registry::prefix_end(&event::subject_prefix("ee", epc));
            index
                .walk_range(&start, &end, false, &mut |key, _| {
                    if let Some((time, leaf, _)) = event::key_position(key) {
                        found.insert((time, leaf));
                    }
                    true
                })
                .map_err(internal)?;
        }
        return Ok((found.into_iter().collect(), false));
    }
    // By time: walk from the page token (or the time bounds) in the answer's order, at
    // most SCAN_LIMIT events per request; a truncated walk continues on the next page.
    let mut start = event::time_key(since, 0);
    let mut end = match query.before {
        Some(t) => event::time_key(t, 0),
        None => b"et0".to_vec(),
    };
    if let Some((time, leaf)) = query.after {
        let key = event::time_key(time, leaf);
        if query.descending {
            end = end.min(key);
        } else {
            let mut after = key;
            after.push(0);
            start = start.max(after);
        }
    }
    let mut positions = Vec::new();
    index
        .walk_range(&start, &end, query.descending, &mut |key, _| {
            if let Some(position) = event::time_key_position(key) {
                positions.push(position);
            }
            positions.len() < SCAN_LIMIT
        })
        .map_err(internal)?;
    let truncated = positions.len() == SCAN_LIMIT;
    if query.descending {
        // `answer_query` reverses descending answers; keep ascending order here.
        positions.reverse();
    }
    Ok((positions, truncated))
}

fn query_document(events: Vec<Value>) -> Value {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "@context": [
            "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"medid": medid_registry::event::hash::MEDID_NAMESPACE}
        ],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": now,
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events}
            }
        }
    })
}

fn answer_query(state: &AppState, uri: &Uri, query: &EventQuery) -> Result<Response, ApiError> {
    let (mut positions, truncated) = candidates(state, query)?;
    if query.descending {
        positions.reverse();
    }
    let last_scanned = positions.last().copied();
    // `eventCountLimit` caps the events of one answer; `perPage` pages through them.
    let cap = query.per_page.min(query.limit.unwrap_or(usize::MAX));
    let mut events = Vec::new();
    let mut last = None;
    let mut more = false;
    for position in positions {
        if let Some(after) = query.after {
            let done = if query.descending {
                position >= after
            } else {
                position <= after
            };
            if done {
                continue;
            }
        }
        let entry = state.inner.log.entry(position.1).map_err(ApiError::log)?;
        let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&entry) else {
            continue;
        };
        if event.contains_key("op") {
            continue;
        }
        let Ok(facts) = epcis::EventFacts::read(&event) else {
            continue;
        };
        if !query.matches(&facts, &event) {
            continue;
        }
        if events.len() == cap {
            more = query.limit.is_none_or(|l| l > cap);
            break;
        }
        last = Some(format!("{}.{}", facts.time, position.1));
        events.push(Value::Object(event));
    }
    let next = if more {
        last
    } else if truncated && events.len() < cap {
        // The walk stopped early: the next page continues after what was scanned.
        last_scanned.map(|(time, leaf)| format!("{time}.{leaf}"))
    } else {
        None
    };
    let mut response = json_response(StatusCode::OK, &query_document(events));
    if let Some(token) = next {
        let mut pairs: Vec<(String, String)> = query_pairs(uri)
            .into_iter()
            .filter(|(n, _)| n != "nextPageToken")
            .collect();
        pairs.push(("nextPageToken".into(), token));
        let query_text = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        if let Ok(link) =
            HeaderValue::from_str(&format!("<{}?{query_text}>; rel=\"next\"", uri.path()))
        {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

pub(super) async fn query(State(state): State<AppState>, uri: Uri) -> Response {
    let answer = EventQuery::parse(&uri).and_then(|q| answer_query(&state, &uri, &q));
    answer.unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn epc_events(State(state): State<AppState>, uri: Uri) -> Response {
    let answer = (|| {
        let rest = uri.path().strip_prefix("/epcs/").unwrap_or_default();
        let epc = rest.strip_suffix("/events").unwrap_or_default();
        let epc = super::percent_decode(epc)
            .ok_or_else(|| ApiError::bad_request("the EPC is not valid percent-encoding"))?;
        let epc = normalise_epc(&epc)
            .map_err(|e| ApiError::bad_request(format!("`{}`: {e}", shorten(&epc))))?;
        let mut query = EventQuery::parse(&uri)?;
        query.any_epcs.push(epc);
        answer_query(&state, &uri, &query)
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}

fn viewer(method: &Method, uri: &Uri, headers: &HeaderMap) -> Viewer {
    match signers(method, uri, headers) {
        None => Viewer::Dids(Vec::new()),
        Some(dids) => Viewer::Dids(dids.iter().map(ToString::to_string).collect()),
    }
}

fn report_response(
    state: &AppState,
    trace: &Trace,
    from: &str,
    direction: &str,
    kind: &str,
    viewer: &Viewer,
    proofs: bool,
) -> Result<Response, ApiError> {
    let index = state.index();
    let mut report = TraceReport::new(trace, from, direction, kind, viewer, |c| {
        index.patient_of(c).ok().flatten()
    });
    if proofs {
        let snapshot = state.inner.log.snapshot().map_err(ApiError::log)?;
        let size = snapshot.size();
        let note = snapshot.note().to_vec();
        report.attach_proofs(&note, |leaf| {
            Ok::<_, ApiError>((
                snapshot.entry(leaf).map_err(ApiError::log)?,
                snapshot
                    .inclusion_proof(leaf, size)
                    .map_err(ApiError::log)?,
            ))
        })?;
    }
    let mut response = json_response(StatusCode::OK, &report);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

fn flag(value: &str, name: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "`{name}={}`: true or false",
            shorten(other)
        ))),
    }
}

pub(super) async fn trace(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = (|| {
        let mut from = None;
        let mut forward = None;
        let mut proofs = false;
        let (mut since, mut until) = (None, None);
        for (name, value) in query_pairs(&uri) {
            match name.as_str() {
                "from" => from = Some(value),
                "direction" => {
                    forward = Some(match value.as_str() {
                        "forward" => true,
                        "reverse" => false,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "`direction={}`: forward or reverse",
                                shorten(other)
                            )));
                        }
                    });
                }
                "proofs" => proofs = flag(&value, &name)?,
                "since" => since = Some(time_param(&value, &name)?),
                "until" => until = Some(time_param(&value, &name)?),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "`{}` is not a trace parameter (from, direction, proofs, since, until)",
                        shorten(other)
                    )));
                }
            }
        }
        let from = from.ok_or_else(|| ApiError::bad_request("`from=` is required"))?;
        let forward = forward.unwrap_or(true);
        let traced = trace::trace_from(state.traces(), &from, forward, since, until)
            .map_err(ApiError::internal)?;
        let Some((trace, kind)) = traced else {
            return Err(ApiError::not_found(format!(
                "no event names `{}`: nothing to trace",
                shorten(&from)
            )));
        };
        let direction = if forward { "forward" } else { "reverse" };
        let viewer = viewer(&method, &uri, &headers);
        report_response(&state, &trace, &from, direction, kind, &viewer, proofs)
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn recall(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = (|| {
        let pairs = query_pairs(&uri);
        let mut proofs = false;
        let mut target = None;
        for (name, value) in pairs {
            match name.as_str() {
                "sterilizer" | "lot" => target = Some((name, value)),
                "proofs" => proofs = flag(&value, &name)?,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "`{}` is not a recall parameter (sterilizer, lot, proofs)",
                        shorten(other)
                    )));
                }
            }
        }
        let (name, value) =
            target.ok_or_else(|| ApiError::bad_request("`sterilizer=` or `lot=` is required"))?;
        let id = normalise_epc(&value)
            .map_err(|e| ApiError::bad_request(format!("`{name}={}`: {e}", shorten(&value))))?;
        let source = state.traces();
        let trace = if name == "sterilizer" {
            trace::recall_sterilizer(source, &id)
        } else {
            trace::forward_from_lot(source, &id)
        }
        .map_err(ApiError::internal)?;
        let viewer = viewer(&method, &uri, &headers);
        report_response(&state, &trace, &id, "forward", "recall", &viewer, proofs)
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}
