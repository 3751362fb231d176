//! [`PatientLinks`]: the index's patient links (commitment of a use → patient, and
//! patient → commitments) held in memory, for a node that answers traces
//! ([`Index::hold_patient_links`](crate::Index::hold_patient_links)).
//!
//! A trace report opens every commitment it reached to count distinct patients and to
//! name the ones the viewer may see (a hundred or more for a reverse trace), and a
//! reverse trace starts from a patient's commitments. Read from sled, each is a page
//! of the `patients` tree; once the index outgrows sled's cache those pages are read
//! from disk, and they set a trace's tail.
//!
//! Commitments are held as their 32 bytes when written as `sha256:` and 64 lower-case
//! hex digits (every commitment the node computes); any other spelling is held as it is.

use std::collections::HashMap;
use std::sync::Arc;

/// A commitment as held.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Commitment {
    Sha256([u8; 32]),
    Other(Box<str>),
}

impl Commitment {
    fn of(text: &str) -> Self {
        let mut bytes = [0; 32];
        match text.strip_prefix("sha256:") {
            Some(digits)
                if !digits.bytes().any(|b| b.is_ascii_uppercase())
                    && hex::decode_to_slice(digits, &mut bytes).is_ok() =>
            {
                Self::Sha256(bytes)
            }
            _ => Self::Other(text.into()),
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Sha256(bytes) => format!("sha256:{}", hex::encode(bytes)),
            Self::Other(text) => text.to_string(),
        }
    }
}

/// Patient links in memory; every change is idempotent, so that applying one twice
/// (once read from the tree, once as it is made) changes nothing.
#[derive(Default)]
pub(crate) struct PatientLinks {
    /// The patients, by number.
    names: Vec<Arc<str>>,
    numbers: HashMap<Arc<str>, u32>,
    /// By patient number: the commitments of their uses.
    uses: Vec<Vec<Commitment>>,
    patient: HashMap<Commitment, u32>,
}

impl PatientLinks {
    /// Links `commitment` to `patient`.
    pub(crate) fn link(&mut self, patient: &str, commitment: &str) {
        let commitment = Commitment::of(commitment);
        if self.patient.contains_key(&commitment) {
            return;
        }
        let number = match self.numbers.get(patient) {
            Some(number) => *number,
            None => {
                let Ok(number) = u32::try_from(self.names.len()) else {
                    return;
                };
                let name: Arc<str> = patient.into();
                self.names.push(name.clone());
                self.numbers.insert(name, number);
                self.uses.push(Vec::new());
                number
            }
        };
        self.uses[number as usize].push(commitment.clone());
        self.patient.insert(commitment, number);
    }

    /// Drops the link of `commitment`, if any.
    pub(crate) fn unlink(&mut self, commitment: &str) {
        let commitment = Commitment::of(commitment);
        if let Some(number) = self.patient.remove(&commitment)
            && let Some(uses) = self.uses.get_mut(number as usize)
        {
            uses.retain(|c| *c != commitment);
        }
    }

    /// The patient behind `commitment`.
    pub(crate) fn patient_of(&self, commitment: &str) -> Option<String> {
        let number = self.patient.get(&Commitment::of(commitment))?;
        self.names
            .get(*number as usize)
            .map(|name| name.to_string())
    }

    /// The commitments of `patient`'s uses, in the order the tree's keys give them.
    pub(crate) fn commitments(&self, patient: &str) -> Vec<String> {
        let Some(number) = self.numbers.get(patient) else {
            return Vec::new();
        };
        let mut all: Vec<String> = self.uses[*number as usize]
            .iter()
            .map(Commitment::text)
            .collect();
        all.sort_unstable();
        all
    }

    /// How many links are held.
    pub(crate) fn len(&self) -> usize {
        self.patient.len()
    }

    /// Gives back memory held beyond what the links need.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.numbers.shrink_to_fit();
        self.uses.iter_mut().for_each(Vec::shrink_to_fit);
        self.uses.shrink_to_fit();
        self.patient.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::PatientLinks;

    #[test]
    fn links_are_idempotent_and_keep_any_spelling() {
        let lower = format!("sha256:{}", "ab".repeat(32));
        let upper = format!("sha256:{}", "AB".repeat(32));
        let mut links = PatientLinks::default();
        links.link("PAT-1", &lower);
        links.link("PAT-1", &lower);
        links.link("PAT-1", &upper);
        links.link("PAT-2", "sha256:short");
        assert_eq!(links.len(), 3);
        assert_eq!(links.patient_of(&lower).as_deref(), Some("PAT-1"));
        assert_eq!(links.patient_of(&upper).as_deref(), Some("PAT-1"));
        // Sorted as the tree sorts its keys: upper-case hex first.
        assert_eq!(
            links.commitments("PAT-1"),
            vec![upper.clone(), lower.clone()]
        );
        assert_eq!(links.commitments("PAT-2"), vec!["sha256:short".to_owned()]);
        links.unlink(&lower);
        links.unlink(&lower);
        assert_eq!(links.patient_of(&lower), None);
        assert_eq!(links.commitments("PAT-1"), vec![upper]);
        assert!(links.commitments("PAT-3").is_empty());
        assert_eq!(links.len(), 2);
    }
}
