//! Talking to a running node over HTTP: submitting signed operations (`--server URL`)
//! and reading answers.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use medid_registry::Receipt;
use medid_registry::op::Submission;
use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The base URL of a node: `http://HOST:PORT` without a trailing slash.
pub(crate) fn base(server: &str) -> anyhow::Result<&str> {
    let base = server.trim_end_matches('/');
    if !base.starts_with("http://") {
        bail!("--server {server}: give the node's HTTP address as http://HOST:PORT");
    }
    Ok(base)
}

/// A GET: the status and the body's bytes.
fn fetch(url: &str, accept: Option<&str>) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut request = agent().get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let mut response = request
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .read_to_vec()
        .with_context(|| format!("reading the answer of {url}"))?;
    Ok((status, bytes))
}

/// A GET returning JSON: the status and the body (a JSON string when it is not JSON).
pub(crate) fn get_json(url: &str, accept: &str) -> anyhow::Result<(u16, Value)> {
    let (status, bytes) = fetch(url, Some(accept))?;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, body))
}

/// A GET returning bytes; an error unless the status is 200.
pub(crate) fn get_bytes(url: &str) -> anyhow::Result<Vec<u8>> {
    let (status, bytes) = fetch(url, None)?;
    if status != 200 {
        bail!("{url}: HTTP {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(bytes)
}

/// Submits a signed operation to the node at `server`; the receipt, or the node's
/// refusal as an error.
pub(crate) fn submit(server: &str, submission: &Submission) -> anyhow::Result<Receipt> {
    let url = format!("{}/api/ops", base(server)?);
    let body = serde_json::to_string(submission)?;
    let mut response = agent()
        .post(&url)
        .header("content-type", "application/json")
        .send(body.as_bytes())
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{url} answered something that is not a receipt: {text}"));
    }
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = answer["error"].as_str().unwrap_or("error");
    let message = answer["message"].as_str().unwrap_or(text.as_str());
    Err(anyhow!(
        "refused by the node ({code}, HTTP {status}): {message}"
    ))
}

fn read_answer(
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

/// A POST of JSON returning JSON: the status and the body.
pub(crate) fn post_json(url: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let bytes = serde_json::to_vec(body)?;
    let response = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(&bytes[..])
        .with_context(|| format!("cannot reach {url}"))?;
    read_answer(url, response)
}

/// A GET carrying an HTTP message signature (RFC 9421), returning JSON.
pub(crate) fn get_signed(
    url: &str,
    signature_input: &str,
    signature: &str,
) -> anyhow::Result<(u16, Value)> {
    let response = agent()
        .get(url)
        .header("accept", "application/json")
        .header("signature-input", signature_input)
        .header("signature", signature)
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    read_answer(url, response)
}
