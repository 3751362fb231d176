//! Retention (WS 310.3): washing and disinfection records are kept at least six
//! months, sterilization and monitoring records (loads, cycle results, indicators) at
//! least three years. The ledger itself is never purged; what can be erased is the
//! off-log data sealed into an event (a patient, an operator's name), and that is
//! refused before the event's retention period has passed.

use super::epcis::{EventFacts, bizstep};
use crate::op::OpError;

/// Days a washing / disinfection record is kept at least (six months).
pub const WASHING_DAYS: i64 = 183;
/// Days a sterilization or monitoring record is kept at least (three years).
pub const STERILIZATION_DAYS: i64 = 3 * 365 + 1;

const DAY_MS: i64 = 86_400_000;

/// How long an event's record must be kept, in days; `None` when no rule applies.
pub fn retention_days(facts: &EventFacts) -> Option<i64> {
    let step = facts.biz_step.as_deref();
    if step == Some(bizstep::WASHING) {
        Some(WASHING_DAYS)
    } else if step == Some(bizstep::STERILIZING)
        || facts.biological.is_some()
        || facts.chemical.is_some()
    {
        Some(STERILIZATION_DAYS)
    } else {
        None
    }
}

/// Refuses erasing data of the event `event_id` at `now_ms` (ms since the epoch)
/// before its retention period has passed.
pub fn check_erasure(facts: &EventFacts, event_id: &str, now_ms: i64) -> Result<(), OpError> {
    let Some(days) = retention_days(facts) else {
        return Ok(());
    };
    let until = facts.time.saturating_add(days.saturating_mul(DAY_MS));
    if now_ms < until {
        let left = (until - now_ms + DAY_MS - 1) / DAY_MS;
        return Err(OpError::Retention(format!(
            "event {event_id} is a {} record kept at least {days} days (WS 310.3); it may be erased in {left} days",
            if days == WASHING_DAYS {
                "washing"
            } else {
                "sterilization"
            }
        )));
    }
    Ok(())
}
