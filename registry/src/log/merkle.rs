//! Merkle tree math of RFC 6962 / RFC 9162: tree hashes and proof verification.
//!
//! - [`verify_inclusion`] — checks an inclusion proof (RFC 9162 §2.1.3.2).
//! - [`verify_consistency`] — checks a consistency proof (RFC 9162 §2.1.4.2).
//! - [`ProofError`] — why a proof was rejected.
//! - [`tree_root`] — the Merkle tree hash (MTH, RFC 6962 §2.1) of a list of leaf hashes.
//!
//! Written by hand rather than taken from `tlog_tiles::check_record` / `check_tree`:
//! those take roots as 32-byte `Hash` values, reject consistency between equal sizes
//! only through a root comparison, and cannot be fed the byte strings of the public
//! test vectors as they are (some vector roots are 12 bytes long and, for equal tree
//! sizes, must still be compared rather than refused at the type boundary). The two
//! algorithms below follow the RFC 9162 text step by step, so each branch can be
//! checked against it; unit tests cross-check them against `tlog_tiles` on generated
//! trees. No arithmetic here can overflow, whatever the input.

use super::hash::{EMPTY_ROOT, Hash, node_hash};

/// Why an inclusion or consistency proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree (`leaf_index >= tree_size`).
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index of the proof.
        index: u64,
        /// The tree size of the proof.
        size: u64,
    },
    /// A consistency proof from the empty tree was asked for; it proves nothing.
    #[error("a consistency proof needs an old tree size of at least 1")]
    EmptyOldTree,
    /// The old tree size is larger than the new one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    OldTreeLarger {
        /// The old tree size.
        old: u64,
        /// The new tree size.
        new: u64,
    },
    /// The tree sizes are equal, so the proof must be empty, but it is not.
    #[error("tree sizes are equal but the proof has {0} hashes, expected none")]
    UnexpectedProof(usize),
    /// The proof has fewer or more hashes than the tree sizes call for.
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    WrongProofLength,
    /// The hashes recomputed from the proof do not match the given root(s).
    #[error("the proof does not lead to the given root hash")]
    RootMismatch,
}

/// Verifies that `proof` proves the leaf `leaf_hash` at `leaf_index` is in the tree of
/// `tree_size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
///
/// `root` is taken as bytes, as the RFC compares it: a root that is not 32 bytes long
/// simply never matches. Returns `Ok(())` only if the proof is valid.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &[u8],
) -> Result<(), ProofError> {
    // 1. Compare leaf_index against tree_size; fail if leaf_index >= tree_size.
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            index: leaf_index,
            size: tree_size,
        });
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1 (no underflow: tree_size > 0).
    let mut f_n = leaf_index;
    let mut s_n = tree_size - 1;
    // 3. Set r to hash.
    let mut r = *leaf_hash;
    // 4. For each value p in the inclusion_path array:
    for p in proof {
        // a. If sn is 0, stop the iteration and fail the proof verification.
        if s_n == 0 {
            return Err(ProofError::WrongProofLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f_n & 1 == 1 || f_n == s_n {
            // 1. Set r to HASH(0x01 || p || r).
            r = node_hash(p, &r);
            // 2. If LSB(fn) is not set, right-shift both fn and sn equally until
            //    either LSB(fn) is set or fn is 0.
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            // Otherwise: set r to HASH(0x01 || r || p).
            r = node_hash(&r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        f_n >>= 1;
        s_n >>= 1;
    }
    // 5. Compare sn to 0 and r against root_hash.
    if s_n != 0 {
        return Err(ProofError::WrongProofLength);
    }
    if r.as_bytes().as_slice() != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that `proof` proves the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
///
/// Besides the RFC's case `0 < old_size < new_size`, equal sizes are accepted with an
/// empty proof when the two roots are equal; an old size of 0 is refused (nothing is
/// proven). Roots are compared as bytes, like [`verify_inclusion`]'s.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &[u8],
    new_root: &[u8],
) -> Result<(), ProofError> {
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size > new_size {
        return Err(ProofError::OldTreeLarger {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::UnexpectedProof(proof.len()));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // 1. If consistency_path is an empty array, stop and fail the proof verification.
    let Some((first_proof_hash, rest)) = proof.split_first() else {
        return Err(ProofError::WrongProofLength);
    };
    // 2. If first is an exact power of 2, prepend first_hash to the consistency_path.
    //    The path is then [first_hash, proof...]; otherwise it is the proof as given.
    //    A first_hash that is not 32 bytes cannot start the path, and cannot match
    //    the recomputed fr in step 7 either: the proof fails.
    let (start, path): (Hash, &[Hash]) = if old_size.is_power_of_two() {
        match Hash::from_slice(old_root) {
            Ok(first_hash) => (first_hash, proof),
            Err(_) => return Err(ProofError::RootMismatch),
        }
    } else {
        (*first_proof_hash, rest)
    };
    // 3. Set fn to first - 1 and sn to second - 1 (no underflow: 0 < first < second).
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    // 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let mut f_r = start;
    let mut s_r = start;
    // 6. For each subsequent value c in the consistency_path array:
    for c in path {
        // a. If sn is 0, stop the iteration and fail the proof verification.
        if s_n == 0 {
            return Err(ProofError::WrongProofLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f_n & 1 == 1 || f_n == s_n {
            // 1. Set fr to HASH(0x01 || c || fr).  2. Set sr to HASH(0x01 || c || sr).
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            // 3. If LSB(fn) is not set, right-shift both fn and sn equally until
            //    either LSB(fn) is set or fn is 0.
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            // Otherwise: set sr to HASH(0x01 || sr || c).
            s_r = node_hash(&s_r, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        f_n >>= 1;
        s_n >>= 1;
    }
    // 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
    if s_n != 0 {
        return Err(ProofError::WrongProofLength);
    }
    if f_r.as_bytes().as_slice() != old_root || s_r.as_bytes().as_slice() != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The Merkle tree hash (RFC 6962 §2.1) of a tree whose leaves have these hashes.
///
/// Also the hash of any subtree given its children of equal size, such as the hashes of
/// one tile: `MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))` with `k` the largest
/// power of two smaller than `n`.
pub fn tree_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [one] => *one,
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&tree_root(left), &tree_root(right))
        }
    }
}

/// The largest power of two strictly smaller than `n`, where a tree of `n >= 2` leaves
/// splits into its left and right subtrees. Returns 1 for smaller `n`.
fn split_point(n: usize) -> usize {
    if n < 2 {
        return 1;
    }
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::hash::leaf_hash;

    /// Leaf hashes of `n` distinct entries.
    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    /// RFC 6962 §2.1.1 PATH(m, D[n]), straight from the definition.
    fn audit_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return vec![];
        }
        let k = split_point(d.len());
        if m < k {
            let mut p = audit_path(m, &d[..k]);
            p.push(tree_root(&d[k..]));
            p
        } else {
            let mut p = audit_path(m - k, &d[k..]);
            p.push(tree_root(&d[..k]));
            p
        }
    }

    /// RFC 6962 §2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
    pub(crate) fn subproof(m: usize, d: &[Hash], complete: bool) -> Vec<Hash> {
        if m == d.len() {
            return if complete { vec![] } else { vec![tree_root(d)] };
        }
        let k = split_point(d.len());
        if m <= k {
            let mut p = subproof(m, &d[..k], complete);
            p.push(tree_root(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(tree_root(&d[..k]));
            p
        }
    }

    #[test]
    fn split_points() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (256, 128),
            (257, 256),
        ];
        for (n, k) in cases {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn tree_root_matches_tlog_tiles() {
        struct Stored(Vec<tlog_tiles::Hash>);
        impl tlog_tiles::HashReader for Stored {
            fn read_hashes(&self, idx: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
                Ok(idx.iter().map(|&i| self.0[i as usize]).collect())
            }
        }
        let all = leaves(70);
        let mut stored = Stored(vec![]);
        for (i, leaf) in all.iter().enumerate() {
            let new = tlog_tiles::stored_hashes_for_record_hash(i as u64, leaf.to_tlog(), &stored)
                .unwrap();
            stored.0.extend(new);
            let want = tlog_tiles::tree_hash(i as u64 + 1, &stored).unwrap();
            assert_eq!(
                tree_root(&all[..=i]),
                Hash::from_tlog(want),
                "size {}",
                i + 1
            );
        }
        assert_eq!(tree_root(&[]), EMPTY_ROOT);
    }

    #[test]
    fn generated_proofs_verify_and_mutations_fail() {
        let all = leaves(40);
        for n in 1..=all.len() {
            let tree = &all[..n];
            let root = tree_root(tree);
            for (m, leaf) in tree.iter().enumerate() {
                let proof = audit_path(m, tree);
                let (m64, n64) = (m as u64, n as u64);
                assert_eq!(verify_inclusion(m64, n64, leaf, &proof, &root.0), Ok(()));
                // The tlog_tiles implementation agrees.
                let tp: Vec<_> = proof.iter().map(|h| h.to_tlog()).collect();
                tlog_tiles::check_record(&tp, n64, root.to_tlog(), m64, leaf.to_tlog()).unwrap();
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i].0[0] ^= 1;
                    assert!(verify_inclusion(m64, n64, leaf, &bad, &root.0).is_err());
                }
                let other_leaf = leaf_hash(b"not in the tree");
                assert!(verify_inclusion(m64, n64, &other_leaf, &proof, &root.0).is_err());
                if m + 1 < n {
                    assert!(verify_inclusion(m64 + 1, n64, leaf, &proof, &root.0).is_err());
                }
            }
            for m in 1..=n {
                let old_root = tree_root(&all[..m]);
                let proof = subproof(m, tree, true);
                let (m64, n64) = (m as u64, n as u64);
                assert_eq!(
                    verify_consistency(m64, n64, &proof, &old_root.0, &root.0),
                    Ok(()),
                    "{m} -> {n}"
                );
                let tp: Vec<_> = proof.iter().map(|h| h.to_tlog()).collect();
                tlog_tiles::check_tree(&tp, n64, root.to_tlog(), m64, old_root.to_tlog()).unwrap();
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i].0[31] ^= 0x80;
                    assert!(verify_consistency(m64, n64, &bad, &old_root.0, &root.0).is_err());
                }
                if m < n {
                    assert!(verify_consistency(m64, n64, &proof, &root.0, &old_root.0).is_err());
                }
            }
        }
    }

    #[test]
    fn hostile_sizes_do_not_panic() {
        let h = leaf_hash(b"x");
        let proof = vec![h; 70];
        assert!(verify_inclusion(u64::MAX, u64::MAX, &h, &proof, &h.0).is_err());
        assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &h, &proof, &h.0).is_err());
        assert!(verify_inclusion(u64::MAX, 1, &h, &[], &h.0).is_err());
        assert!(verify_consistency(u64::MAX, u64::MAX, &proof, &h.0, &h.0).is_err());
        assert!(verify_consistency(1, u64::MAX, &proof, &h.0, &h.0).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &proof, &h.0, &h.0).is_err());
        assert!(verify_consistency(1 << 63, u64::MAX, &proof, &h.0[..5], &h.0).is_err());
    }
}
