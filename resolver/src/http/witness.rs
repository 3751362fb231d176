//! Witnessing over HTTP (C2SP `tlog-witness`): `POST /add-checkpoint` when the node
//! witnesses other logs, and the collection of cosignatures on the node's own
//! checkpoints from its witnesses, which `/checkpoint` and the proof bundles then carry.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use medid_registry::log::witness::{AddCheckpoint, Witness};

use super::AppState;

/// What the node knows as a witness and as a witnessed log.
#[derive(Default)]
pub(super) struct WitnessState {
    /// The node's witness, when it witnesses other logs.
    witness: OnceLock<Arc<Witness>>,
    /// The latest own checkpoint cosigned, and the cosignature lines collected on it.
    cosigned: RwLock<Option<(Vec<u8>, String)>>,
}

impl AppState {
    /// Makes the node a witness: `POST /add-checkpoint` answers with `witness` (once;
    /// later calls are ignored).
    pub fn set_witness(&self, witness: Arc<Witness>) {
        let _ = self.inner.witness.witness.set(witness);
    }

    /// `note` with the cosignatures collected on it, if it is the checkpoint they were
    /// collected on.
    pub(super) fn with_cosignatures(&self, mut note: Vec<u8>) -> Vec<u8> {
        let cosigned = self
            .inner
            .witness
            .cosigned
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((checkpoint, lines)) = cosigned.as_ref()
            && *checkpoint == note
        {
            note.extend_from_slice(lines.as_bytes());
        }
        note
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// `POST /add-checkpoint`: the cosignature, or the status the spec requires (409 with
/// `text/x.tlog.size` when the old size is not the one cosigned last).
pub(super) async fn add_checkpoint(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(witness) = state.inner.witness.witness.get().cloned() else {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "this node witnesses no log\n".into(),
        );
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let now = u64::try_from(now).unwrap_or(1);
    let outcome = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    match outcome {
        Ok(Ok(line)) => text(StatusCode::OK, "text/plain; charset=utf-8", line),
        Ok(Err(medid_registry::log::witness::WitnessError::Conflict { size, .. })) => text(
            StatusCode::CONFLICT,
            "text/x.tlog.size",
            format!("{size}\n"),
        ),
        Ok(Err(error)) => text(
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "text/plain; charset=utf-8",
            format!("{error}\n"),
        ),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "the witness failed\n".into(),
        ),
    }
}

/// Submits the node's checkpoint to each witness (`<URL>/add-checkpoint`) every
/// `period` when it changed, with a consistency proof from the size the witness last
/// cosigned (learnt from a 409 at first), and keeps the cosignatures returned on the
/// current checkpoint for `/checkpoint` and the bundles. Runs until the task is dropped;
/// a witness that is down or refuses is logged and tried again next period.
pub async fn collect_cosignatures(state: AppState, witnesses: Vec<String>, period: Duration) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "no HTTP client for the witnesses");
            return;
        }
    };
    let mut known: Vec<u64> = vec![0; witnesses.len()];
    let mut done: Option<Vec<u8>> = None;
    loop {
        if let Ok(note) = state.inner.log.checkpoint()
            && done.as_ref() != Some(&note)
            && let Ok(snapshot) = state.inner.log.snapshot()
        {
            let size = snapshot.size();
            let mut lines = String::new();
            let mut all = true;
            for (i, url) in witnesses.iter().enumerate() {
                let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
                let mut cosigned = None;
                for _attempt in 0..2 {
                    let old = known.get(i).copied().unwrap_or(0).min(size);
                    let proof = if old == 0 || old == size {
                        Vec::new()
                    } else {
                        snapshot.consistency_proof(old, size).unwrap_or_default()
                    };
                    let request = AddCheckpoint {
                        old,
                        proof,
                        checkpoint: snapshot.note().to_vec(),
                    };
                    let Ok(response) = client.post(&endpoint).body(request.to_bytes()).send().await
                    else {
                        break;
                    };
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status == StatusCode::CONFLICT
                        && let Ok(size) = text.trim().parse::<u64>()
                        && let Some(slot) = known.get_mut(i)
                    {
                        *slot = size;
                        continue;
                    }
                    if status == StatusCode::OK {
                        cosigned = Some(text);
                    } else {
                        tracing::warn!(%endpoint, %status, %text, "the witness refused the checkpoint");
                    }
                    break;
                }
                match cosigned {
                    Some(text) => {
                        if let Some(slot) = known.get_mut(i) {
                            *slot = size;
                        }
                        lines.push_str(&text);
                    }
                    None => all = false,
                }
            }
            let note = snapshot.note().to_vec();
            *state
                .inner
                .witness
                .cosigned
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some((note.clone(), lines));
            if all {
                done = Some(note);
            }
        }
        tokio::time::sleep(period).await;
    }
}
