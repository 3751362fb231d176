//! The registry's write path end to end on a real data directory: signed operations,
//! every refusal, restricted values, reindex equivalence and tamper detection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use medid_did::KeyPair;
use medid_registry::id::Identifier;
use medid_registry::op::{InputValue, ReadPermission, Submission, draft, seal_values, sign};
use medid_registry::{Receipt, Registry};
use serde_json::{Value, json};

struct Node {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    registry: Registry,
    admin: KeyPair,
}

fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    let admin = KeyPair::generate();
    Registry::init(&path, "test.medid.example", Some(admin.did())).unwrap();
    let registry = Registry::open(&path).unwrap();
    Node {
        _dir: dir,
        path,
        registry,
        admin,
    }
}

impl Node {
    fn submit(&mut self, op: &str, fields: Value, keys: &[&KeyPair]) -> Result<Receipt, String> {
        self.submit_doc(sign(&draft(op, fields), keys).unwrap(), Vec::new())
    }

    fn submit_doc(
        &mut self,
        operation: Value,
        restricted: Vec<medid_registry::op::RestrictedPayload>,
    ) -> Result<Receipt, String> {
        let answers = self
            .registry
            .submit(&[Submission {
                operation,
                restricted,
            }])
            .unwrap();
        answers
            .into_iter()
            .next()
            .unwrap()
            .map_err(|e| format!("{}: {e}", e.code()))
    }

    fn record(&self, id: &str) -> Option<medid_registry::IdentifierRecord> {
        self.registry
            .index()
            .identifier(&Identifier::parse(id).unwrap())
            .unwrap()
    }

    /// A node with prefix 86.1000 (controlled by `cssd`).
    fn with_prefix(cssd: &KeyPair) -> Self {
        let mut node = node();
        let admin = node.admin.clone();
        node.submit(
            "prefix.create",
            json!({"prefix": "86.1000", "controllers": [cssd.did().to_string()]}),
            &[&admin],
        )
        .unwrap();
        node
    }
}

fn url(index: u32, data: &str) -> Value {
    json!({"index": index, "type": "URL", "data": data})
}

#[test]
fn register_update_delete_round_trip() {
    let cssd = KeyPair::generate();
    let mut node = Node::with_prefix(&cssd);
    let r = node
        .submit(
            "identifier.register",
            json!({"id": "86.1000/PKG-1", "values": [url(1, "https://a.example")]}),
            &[&cssd],
        )
        .unwrap();
    assert_eq!((r.leaf_index, r.tree_size), (1, 2));
    let record = node.record("86.1000/PKG-1").unwrap();
    assert_eq!(record.version, 1);
    assert_eq!(
        record.values[0].value.data.as_deref(),
        Some("https://a.example")
    );

    node.submit(
        "identifier.update",
        json!({"id": "86.1000/PKG-1", "version": 1, "set": [url(1, "https://b.example"), {"index": 2, "type": "DESC", "data": "tray"}]}),
        &[&cssd],
    )
    .unwrap();
    let record = node.record("86.1000/PKG-1").unwrap();
    assert_eq!(record.version, 2);
    assert_eq!(record.values.len(), 2);
    assert_eq!(
        record.values[0].value.data.as_deref(),
        Some("https://b.example")
    );

    node.submit(
        "identifier.update",
        json!({"id": "86.1000/PKG-1", "version": 2, "remove": [2]}),
        &[&cssd],
    )
    .unwrap();
    assert_eq!(node.record("86.1000/PKG-1").unwrap().values.len(), 1);

    node.submit(
        "identifier.delete",
        json!({"id": "86.1000/PKG-1", "version": 3}),
        &[&cssd],
    )
    .unwrap();
    assert!(node.record("86.1000/PKG-1").is_none());
    assert_eq!(node.registry.verify().unwrap(), 5);
}

#[test]
fn every_refusal_path() {
    let cssd = KeyPair::generate();
    let stranger = KeyPair::generate();
    let mut node = Node::with_prefix(&cssd);
    let reg = |id: &str| json!({"id": id, "values": [url(1, "https://a.example")]});

    // Schema errors name the JSON pointer.
    let err = node
        .submit(
            "identifier.register",
            json!({"id": "86.1000/X", "values": [{"index": 0, "type": "URL", "data": "x"}]}),
            &[&cssd],
        )
        .unwrap_err();
    assert!(
        err.starts_with("schema:") && err.contains("/values/0"),
        "{err}"
    );
    let err = node
        .submit("identifier.register", json!({"id": "86.1000/X"}), &[&cssd])
        .unwrap_err();
    assert!(err.starts_with("schema:"), "{err}");
    // A bad identifier is named.
    let err = node
        .submit("identifier.register", reg("86..1000/X"), &[&cssd])
        .unwrap_err();
    assert!(err.starts_with("invalid:") && err.contains("/id"), "{err}");

    // Not a controller.
    let err = node
        .submit("identifier.register", reg("86.1000/X"), &[&stranger])
        .unwrap_err();
    assert!(err.starts_with("notAuthorised"), "{err}");
    let err = node
        .submit(
            "prefix.create",
            json!({"prefix": "87", "controllers": [cssd.did().to_string()]}),
            &[&cssd],
        )
        .unwrap_err();
    assert!(err.starts_with("notAuthorised"), "{err}");
    // No prefix at this node.
    let err = node
        .submit("identifier.register", reg("99.1/X"), &[&cssd])
        .unwrap_err();
    assert!(err.starts_with("notFound"), "{err}");

    // Replay: the very same document, and a new document reusing the nonce.
    let doc = sign(&draft("identifier.register", reg("86.1000/X")), &[&cssd]).unwrap();
    node.submit_doc(doc.clone(), Vec::new()).unwrap();
    let err = node.submit_doc(doc.clone(), Vec::new()).unwrap_err();
    assert!(err.starts_with("replay"), "{err}");
    let mut reused = draft("identifier.register", reg("86.1000/Y"));
    reused["nonce"] = doc["nonce"].clone();
    let err = node
        .submit_doc(sign(&reused, &[&cssd]).unwrap(), Vec::new())
        .unwrap_err();
    assert!(err.starts_with("replay"), "{err}");

    // Stale.
    let mut stale = draft("identifier.register", reg("86.1000/Z"));
    stale["created"] = json!("2020-01-01T00:00:00Z");
    let err = node
        .submit_doc(sign(&stale, &[&cssd]).unwrap(), Vec::new())
        .unwrap_err();
    assert!(err.starts_with("stale"), "{err}");

    // A forged proof.
    let mut forged = sign(&draft("identifier.register", reg("86.1000/Z")), &[&cssd]).unwrap();
    forged["id"] = json!("86.1000/W");
    let err = node.submit_doc(forged, Vec::new()).unwrap_err();
    assert!(err.starts_with("proof"), "{err}");

    // Conflict: two updates made against the same version; the second loses.
    let a = sign(
        &draft(
            "identifier.update",
            json!({"id": "86.1000/X", "version": 1, "set": [url(1, "https://a2.example")]}),
        ),
        &[&cssd],
    )
    .unwrap();
    let b = sign(
        &draft(
            "identifier.update",
            json!({"id": "86.1000/X", "version": 1, "set": [url(1, "https://b2.example")]}),
        ),
        &[&cssd],
    )
    .unwrap();
    let answers = node
        .registry
        .submit(&[
            Submission {
                operation: a,
                restricted: vec![],
            },
            Submission {
                operation: b,
                restricted: vec![],
            },
        ])
        .unwrap();
    assert!(answers[0].is_ok());
    let err = answers[1].as_ref().unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    let record = node.record("86.1000/X").unwrap();
    assert_eq!(
        (record.version, record.values[0].value.data.as_deref()),
        (2, Some("https://a2.example"))
    );

    // Exists.
    let err = node
        .submit("identifier.register", reg("86.1000/X"), &[&cssd])
        .unwrap_err();
    assert!(err.starts_with("exists"), "{err}");

    // Deactivated DID: registered, deactivated, then refused.
    node.submit(
        "did.register",
        json!({"did": cssd.did().to_string(), "name": "CSSD", "role": "sterilization-center"}),
        &[&cssd],
    )
    .unwrap();
    let err = node
        .submit(
            "did.register",
            json!({"did": stranger.did().to_string(), "name": "x", "role": "person"}),
            &[&cssd],
        )
        .unwrap_err();
    assert!(err.starts_with("missingPossession"), "{err}");
    let err = node
        .submit(
            "did.deactivate",
            json!({"did": cssd.did().to_string()}),
            &[&stranger],
        )
        .unwrap_err();
    assert!(err.starts_with("notAuthorised"), "{err}");
    node.submit(
        "did.deactivate",
        json!({"did": cssd.did().to_string()}),
        &[&cssd],
    )
    .unwrap();
    let err = node
        .submit("identifier.register", reg("86.1000/V"), &[&cssd])
        .unwrap_err();
    assert!(err.starts_with("deactivated"), "{err}");

    // Refusals wrote nothing: the ledger holds exactly the accepted operations.
    assert_eq!(node.registry.verify().unwrap(), 5);
}

#[test]
fn controllers_change_needs_proof_of_possession() {
    let cssd = KeyPair::generate();
    let successor = KeyPair::generate();
    let mut node = Node::with_prefix(&cssd);
    let change =
        json!({"prefix": "86.1000", "version": 1, "controllers": [successor.did().to_string()]});
    let err = node
        .submit("controllers.change", change.clone(), &[&cssd])
        .unwrap_err();
    assert!(err.starts_with("missingPossession"), "{err}");
    node.submit("controllers.change", change, &[&cssd, &successor])
        .unwrap();
    let reg = json!({"id": "86.1000/X", "values": [url(1, "https://a.example")]});
    assert!(
        node.submit("identifier.register", reg.clone(), &[&cssd])
            .unwrap_err()
            .starts_with("notAuthorised")
    );
    node.submit("identifier.register", reg, &[&successor])
        .unwrap();

    // Delegation hands a sub-prefix to another controller.
    let hospital = KeyPair::generate();
    node.submit(
        "prefix.delegate",
        json!({"prefix": "86.1000.23", "controllers": [hospital.did().to_string()]}),
        &[&successor],
    )
    .unwrap();
    node.submit(
        "identifier.register",
        json!({"id": "86.1000.23/P-1", "values": [url(1, "https://h.example")]}),
        &[&hospital],
    )
    .unwrap();
    let err = node
        .submit(
            "prefix.delegate",
            json!({"prefix": "86.1000.24", "controllers": [hospital.did().to_string()]}),
            &[&hospital],
        )
        .unwrap_err();
    assert!(err.starts_with("notAuthorised"), "{err}");
}

#[test]
fn restricted_values_stay_off_the_ledger() {
    let hospital = KeyPair::generate();
    let mut node = Node::with_prefix(&hospital);
    let secret = "patient-pseudonym-7f3a9c-DO-NOT-LOG";
    let (values, payloads) = seal_values(&[
        InputValue {
            index: 1,
            kind: "URL".into(),
            data: "https://h.example".into(),
            ttl: 60,
            read: ReadPermission::Public,
        },
        InputValue {
            index: 2,
            kind: "PATIENT".into(),
            data: secret.into(),
            ttl: 60,
            read: ReadPermission::Restricted(vec![hospital.did()]),
        },
    ]);
    let doc = sign(
        &draft(
            "identifier.register",
            json!({"id": "86.1000/USE-1", "values": values}),
        ),
        &[&hospital],
    )
    .unwrap();
    // Without its payload the operation is refused.
    let err = node.submit_doc(doc.clone(), Vec::new()).unwrap_err();
    assert!(err.starts_with("restricted"), "{err}");
    // With a payload that does not open the commitment too.
    let mut wrong = payloads.clone();
    wrong[0].data = "something else".into();
    assert!(
        node.submit_doc(doc.clone(), wrong)
            .unwrap_err()
            .starts_with("restricted")
    );
    // Data inline on a restricted value is a schema error: it would reach the ledger.
    let inline = sign(
        &draft("identifier.register", json!({"id": "86.1000/USE-2", "values": [{"index": 1, "type": "PATIENT", "data": secret, "read": [hospital.did().to_string()]}]})),
        &[&hospital],
    )
    .unwrap();
    assert!(
        node.submit_doc(inline, Vec::new())
            .unwrap_err()
            .starts_with("schema")
    );

    node.submit_doc(doc, payloads.clone()).unwrap();
    let commitment = payloads[0].commitment.clone();
    assert_eq!(
        node.registry.payload(&commitment).unwrap().unwrap().data,
        secret
    );

    // Nowhere in the ledger's files.
    for entry in walk(&node.path.join("log")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            entry.display()
        );
    }
    // Erasure keeps the ledger verifiable.
    assert!(node.registry.erase_payload(&commitment).unwrap());
    assert!(node.registry.payload(&commitment).unwrap().is_none());
    assert_eq!(node.registry.verify().unwrap(), 2);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn reindex_answers_identically_and_tampering_is_named() {
    let cssd = KeyPair::generate();
    let mut node = Node::with_prefix(&cssd);
    let batch: Vec<Submission> = (0..300)
        .map(|i| Submission {
            operation: sign(&draft("identifier.register", json!({"id": format!("86.1000/PKG-{i}"), "values": [url(1, &format!("https://a.example/{i}"))]})), &[&cssd]).unwrap(),
            restricted: vec![],
        })
        .collect();
    assert!(
        node.registry
            .submit(&batch)
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );
    let before: Vec<_> = (0..300)
        .map(|i| node.record(&format!("86.1000/PKG-{i}")))
        .collect();
    assert_eq!(node.registry.reindex().unwrap(), 301);
    let after: Vec<_> = (0..300)
        .map(|i| node.record(&format!("86.1000/PKG-{i}")))
        .collect();
    assert_eq!(before, after);
    assert_eq!(node.registry.verify().unwrap(), 301);

    // An edited index value is named with the entry that wrote it.
    node.registry
        .index()
        .raw_insert(b"i/86.1000/PKG-7", br#"{"tampered":true}"#)
        .unwrap();
    let err = node.registry.verify().unwrap_err().to_string();
    assert!(
        err.contains("i/86.1000/PKG-7") && err.contains("Some(8)"),
        "{err}"
    );
    node.registry.reindex().unwrap();
    node.registry.verify().unwrap();

    // A flipped byte in an entry bundle names the entry.
    drop(node.registry);
    let bundle = node.path.join("log/tile/entries/000.p/45");
    let bundle = if bundle.exists() {
        bundle
    } else {
        node.path.join("log/tile/entries/000")
    };
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&bundle, bytes).unwrap();
    let reopened = Registry::open(&node.path);
    let err = match reopened {
        Ok(registry) => registry.verify().unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("entry"), "{err}");
}

#[test]
fn the_data_directory_is_locked_while_in_use() {
    let node = node();
    let err = Registry::open(&node.path).err().unwrap().to_string();
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn concurrent_writers_share_commits_and_lose_nothing() {
    let cssd = KeyPair::generate();
    let node = Node::with_prefix(&cssd);
    let Node {
        _dir,
        path,
        registry,
        ..
    } = node;
    let (sequencer, thread) = medid_registry::Sequencer::start(registry).unwrap();
    let receipts: Vec<Receipt> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|w| {
                let sequencer = sequencer.clone();
                let cssd = &cssd;
                scope.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let operation = sign(
                                &draft("identifier.register", json!({"id": format!("86.1000/W{w}-{i}"), "values": [url(1, "https://a.example")]})),
                                &[cssd],
                            )
                            .unwrap();
                            sequencer.submit_blocking(&Submission { operation, restricted: vec![] }).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    drop(sequencer);
    let registry = thread.join().unwrap();
    let mut leaves: Vec<u64> = receipts.iter().map(|r| r.leaf_index).collect();
    leaves.sort_unstable();
    assert_eq!(
        leaves,
        (1..=400).collect::<Vec<_>>(),
        "every writer got its own leaf"
    );
    let commits: std::collections::BTreeSet<u64> = receipts.iter().map(|r| r.tree_size).collect();
    assert!(
        commits.len() < receipts.len(),
        "no two writers shared a commit"
    );
    for receipt in &receipts {
        let entry = registry.log().entry(receipt.leaf_index).unwrap();
        assert_eq!(medid_registry::log::leaf_hash(&entry), receipt.entry_hash);
    }
    assert_eq!(registry.verify().unwrap(), 401);
    drop(registry);
    assert!(Registry::open(&path).unwrap().verify().is_ok());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for file in walk(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

#[test]
fn acknowledged_groups_survive_losing_every_unsynced_ledger_write() {
    let cssd = KeyPair::generate();
    let mut node = Node::with_prefix(&cssd);
    node.submit(
        "identifier.register",
        json!({"id": "86.1000/PKG-A", "values": [url(1, "https://a.example/a")]}),
        &[&cssd],
    )
    .unwrap();
    node.registry.sync().unwrap();
    // The ledger as the disk holds it at the sync: everything later is unsynced.
    let snapshot = tempfile::tempdir().unwrap();
    copy_dir(&node.path.join("log"), snapshot.path());
    let batch: Vec<Submission> = (0..300)
        .map(|i| Submission {
            operation: sign(&draft("identifier.register", json!({"id": format!("86.1000/PKG-{i}"), "values": [url(1, &format!("https://a.example/{i}"))]})), &[&cssd]).unwrap(),
            restricted: vec![],
        })
        .collect();
    let receipts: Vec<Receipt> = node
        .registry
        .submit(&batch)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let last = receipts.last().unwrap().clone();
    let Node {
        _dir,
        path,
        registry,
        ..
    } = node;
    registry.abandon();
    // Power loss: every ledger write since the sync is gone, and the checkpoint
    // file is torn.
    std::fs::remove_dir_all(path.join("log")).unwrap();
    copy_dir(snapshot.path(), &path.join("log"));
    std::fs::write(path.join("log/checkpoint"), b"torn").unwrap();

    let registry = Registry::open(&path).unwrap();
    assert_eq!(registry.log().size(), last.tree_size);
    for receipt in &receipts {
        let entry = registry.log().entry(receipt.leaf_index).unwrap();
        assert_eq!(medid_registry::log::leaf_hash(&entry), receipt.entry_hash);
    }
    assert_eq!(registry.verify().unwrap(), last.tree_size);
    let record = registry
        .index()
        .identifier(&Identifier::parse("86.1000/PKG-299").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(record.log_index, last.leaf_index);
    drop(registry);
    // Reopened after a clean close: nothing left to replay, same ledger.
    let registry = Registry::open(&path).unwrap();
    assert_eq!(registry.verify().unwrap(), last.tree_size);
}

#[test]
fn a_node_in_use_is_refused_and_one_let_go_meanwhile_opens() {
    let node = node();
    // Held throughout: refused, naming the directory.
    let started = std::time::Instant::now();
    let Err(err) = Registry::open(&node.path) else {
        panic!("a node in use opened twice");
    };
    assert!(
        matches!(&err, medid_registry::RegistryError::Locked(dir) if *dir == node.path),
        "{err}"
    );
    assert!(
        err.to_string().contains("in use by another medid process"),
        "{err}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    // Let go while the opener waits (as when a child process started elsewhere in
    // this process briefly held a copy of the lock): it opens.
    let Node {
        _dir,
        path,
        registry,
        ..
    } = node;
    let size = registry.log().size();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(registry);
    });
    let reopened = Registry::open(&path).unwrap();
    holder.join().unwrap();
    assert_eq!(reopened.log().size(), size);
}
