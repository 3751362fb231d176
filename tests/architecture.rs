//! ARCHITECTURE.md stays true: every workspace member and top-level folder has its
//! place in the code map.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::path::Path;

#[test]
fn every_workspace_member_is_in_the_code_map() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let manifest: String = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members_line = manifest
        .lines()
        .find(|l| l.starts_with("members"))
        .expect("the root manifest lists workspace members");
    let members: Vec<&str> = members_line.split('"').skip(1).step_by(2).collect();
    assert!(members.len() >= 3, "{members:?}");
    for folder in members
        .iter()
        .copied()
        .chain(["src", "schemas", "tests", "benches"])
    {
        assert!(
            architecture.contains(&format!("### `{folder}/`")),
            "ARCHITECTURE.md has no code-map heading for `{folder}/`"
        );
        assert!(root.join(folder).is_dir(), "{folder}/ is named but missing");
    }
}
