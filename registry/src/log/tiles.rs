//! The C2SP tlog-tiles layout: resource paths and entry bundles.
//!
//! - [`tile_path`] — `tile/<L>/<N>[.p/<W>]`, a hash tile of height 8.
//! - [`entries_path`] — `tile/entries/<N>[.p/<W>]`, an entry bundle.
//! - [`CHECKPOINT_PATH`] — `checkpoint`, the signed tree head.
//! - entry bundles: big-endian `u16` length-prefixed entries, at most
//!   [`MAX_ENTRY_LEN`] bytes each ([`encode_entry`], [`parse_bundle`]).
//!
//! The paths are formatted here rather than by `tlog_tiles::Tile::path`, because that
//! function emits the Go sumdb layout (`tile/<H>/<L>/<N>`, with the tile height, and
//! `data` for entries), not the C2SP layout served to tlog clients. A unit test checks
//! that the two agree on the `<N>` encoding. Pure functions, no I/O.

use std::fmt::Write as _;

/// Height of every tile: a full tile holds `2^8 = 256` hashes (tlog-tiles fixes it).
pub const TILE_HEIGHT: u8 = 8;

/// Number of hashes in a full tile, and of entries in a full entry bundle.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;

/// Path of the signed checkpoint.
pub const CHECKPOINT_PATH: &str = "checkpoint";

/// Largest entry a bundle can hold: its length is a big-endian `u16`.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Path of the hash tile at `level`, number `index` in that level, holding `width`
/// hashes: `tile/<L>/<N>` when full (`width == 256`), `tile/<L>/<N>.p/<W>` when partial.
pub fn tile_path(level: u8, index: u64, width: u32) -> String {
    let mut path = format!("tile/{level}/");
    push_index_and_width(&mut path, index, width);
    path
}

/// Path of the entry bundle number `index` holding `width` entries:
/// `tile/entries/<N>` when full (`width == 256`), `tile/entries/<N>.p/<W>` when partial.
pub fn entries_path(index: u64, width: u32) -> String {
    let mut path = String::from("tile/entries/");
    push_index_and_width(&mut path, index, width);
    path
}

/// Appends `<N>[.p/<W>]`: `N` in zero-padded 3-digit elements, all but the last
/// prefixed with `x` (1234067 → `x001/x234/067`).
fn push_index_and_width(path: &mut String, index: u64, width: u32) {
    let mut groups = Vec::with_capacity(7);
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    for (i, group) in groups.iter().rev().enumerate() {
        // Writing to a String cannot fail.
        let _ = if i < last {
            write!(path, "x{group:03}/")
        } else {
            write!(path, "{group:03}")
        };
    }
    if width != TILE_WIDTH {
        let _ = write!(path, ".p/{width}");
    }
}

/// Appends one entry to an entry bundle: its length as big-endian `u16`, then its bytes.
/// Returns `false`, appending nothing, if the entry is longer than [`MAX_ENTRY_LEN`].
pub(crate) fn encode_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> bool {
    let Ok(len) = u16::try_from(entry.len()) else {
        return false;
    };
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    true
}

/// The entries of an entry bundle, as far as they could be read.
#[derive(Debug)]
pub(crate) struct ParsedBundle<'a> {
    /// The entries read, in order.
    pub(crate) entries: Vec<&'a [u8]>,
    /// Bytes were left over that do not form a whole entry.
    pub(crate) truncated: bool,
}

/// Splits an entry bundle into its entries. Never fails: a bundle whose end does not
/// form a whole entry is returned with `truncated` set and the entries before it.
pub(crate) fn parse_bundle(bundle: &[u8]) -> ParsedBundle<'_> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    loop {
        match rest {
            [] => {
                return ParsedBundle {
                    entries,
                    truncated: false,
                };
            }
            [hi, lo, tail @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                if tail.len() < len {
                    break;
                }
                let (entry, next) = tail.split_at(len);
                entries.push(entry);
                rest = next;
            }
            [_] => break,
        }
    }
    ParsedBundle {
        entries,
        truncated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(0, 273, 112), "tile/0/273.p/112");
        assert_eq!(tile_path(1, 1, 17), "tile/1/001.p/17");
        assert_eq!(tile_path(2, 0, 1), "tile/2/000.p/1");
        assert_eq!(tile_path(5, 1_234_067, 256), "tile/5/x001/x234/067");
        assert_eq!(tile_path(0, 1000, 256), "tile/0/x001/000");
        assert_eq!(entries_path(1_234_067, 3), "tile/entries/x001/x234/067.p/3");
        assert_eq!(entries_path(999, 256), "tile/entries/999");
        assert_eq!(
            tile_path(63, u64::MAX, 255),
            "tile/63/x018/x446/x744/x073/x709/x551/615.p/255"
        );
    }

    #[test]
    fn index_encoding_agrees_with_tlog_tiles() {
        for index in [0, 1, 999, 1000, 1001, 65_535, 1_234_067, u64::MAX / 3] {
            for width in [1, 17, 255, 256] {
                let go = tlog_tiles::Tile::new(TILE_HEIGHT, 3, index, width, false).path();
                let ours = tile_path(3, index, width);
                assert_eq!(go.replacen("tile/8/", "tile/", 1), ours);
                let go = tlog_tiles::Tile::new(TILE_HEIGHT, 0, index, width, true).path();
                assert_eq!(
                    go.replacen("tile/8/data/", "tile/entries/", 1),
                    entries_path(index, width)
                );
            }
        }
    }

    #[test]
    fn bundles_round_trip() {
        let entries: Vec<Vec<u8>> =
            vec![vec![], b"a".to_vec(), vec![7; 300], vec![1; MAX_ENTRY_LEN]];
        let mut bundle = Vec::new();
        for e in &entries {
            assert!(encode_entry(&mut bundle, e));
        }
        assert!(!encode_entry(&mut bundle, &vec![0; MAX_ENTRY_LEN + 1]));
        let parsed = parse_bundle(&bundle);
        assert!(!parsed.truncated);
        assert_eq!(
            parsed.entries,
            entries.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        assert_eq!(&bundle[..5], &[0, 0, 0, 1, b'a']);

        for cut in [1, 3, 4, 6, bundle.len() - 1] {
            let parsed = parse_bundle(&bundle[..cut]);
            assert!(parsed.truncated, "cut at {cut}");
        }
        let parsed = parse_bundle(&bundle[..3]);
        assert_eq!(parsed.entries, vec![&[] as &[u8]]);
    }
}
