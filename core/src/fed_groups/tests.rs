use super::*;
use crate::directory::DirectoryKey;
use crate::statement::tests::sample;
use crate::statement::Statement;
use crate::time::format_rfc3339;
use crate::tlp::ALL_LEVELS;
use crate::PAYLOAD_TYPE_STATEMENT_V1;

fn v(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn members_are_qualified_by_their_hub_and_sorted() {
    assert_eq!(
        split_member("alice-bank@hub-a"),
        Some(("alice-bank", "hub-a"))
    );
    for bad in ["alice", "@hub", "alice@", "Alice@hub", "a@b@c", "a b@c"] {
        assert_eq!(split_member(bad), None, "{bad}");
    }
    let here = canonical_members(
        &v(&["dave-bank@hub-b", "alice-bank", "alice-bank"]),
        "hub-a",
    );
    let there = canonical_members(&v(&["alice-bank@hub-a", "dave-bank"]), "hub-b");
    assert_eq!(here, v(&["alice-bank@hub-a", "dave-bank@hub-b"]));
    assert_eq!(here, there);
    assert_eq!(orgs_at(&here, "hub-b"), v(&["dave-bank"]));
    assert_eq!(orgs_at(&here, "hub-a"), v(&["alice-bank"]));
    assert!(orgs_at(&here, "hub-c").is_empty());
}

fn manifest() -> GroupManifest {
    GroupManifest {
        hub: "hub-a".into(),
        peer: "hub-b".into(),
        issued: 1_700_000_000,
        groups: vec![
            SharedGroup {
                name: "payments".into(),
                members: v(&["x@hub-a"]),
            },
            SharedGroup {
                name: "supply-chain".into(),
                members: v(&["alice-bank@hub-a", "dave-bank@hub-b"]),
            },
        ],
    }
}

#[test]
fn manifests_are_signed_canonical_and_bounded() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let pinned = key.verifying_key().unwrap();
    let m = manifest();
    let env = m.sign(&key).unwrap();
    assert_eq!(
        GroupManifest::open(&env, &pinned, "hub-a", "hub-b").unwrap(),
        m
    );
    assert_eq!(
        m.members_of("supply-chain"),
        Some(&v(&["alice-bank@hub-a", "dave-bank@hub-b"])[..])
    );
    assert_eq!(m.members_of("nope"), None);
    // Another key, a flipped byte, a manifest for another peer.
    assert_eq!(
        GroupManifest::open(&m.sign(&other).unwrap(), &pinned, "hub-a", "hub-b").unwrap_err(),
        ManifestError::Signer
    );
    let mut flipped = env.clone();
    flipped.payload[5] ^= 1;
    assert_eq!(
        GroupManifest::open(&flipped, &pinned, "hub-a", "hub-b").unwrap_err(),
        ManifestError::BadSignature
    );
    assert!(matches!(
        GroupManifest::open(&env, &pinned, "hub-a", "hub-c").unwrap_err(),
        ManifestError::WrongHub { .. }
    ));
    let mut wrong_type = env.clone();
    wrong_type.payload_type = crate::directory::PAYLOAD_TYPE_DIRECTORY_V1.into();
    assert_eq!(
        GroupManifest::open(&wrong_type, &pinned, "hub-a", "hub-b").unwrap_err(),
        ManifestError::Signer
    );
    let mut two = env.clone();
    two.signatures.push(two.signatures[0].clone());
    assert_eq!(
        GroupManifest::open(&two, &pinned, "hub-a", "hub-b").unwrap_err(),
        ManifestError::Signer
    );

    let dec = |s: &str| GroupManifest::decode(s.as_bytes());
    let ok = r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"g","members":["x@a"]}]}"#;
    assert!(dec(ok).is_ok());
    for bad in [
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"g","members":["x@a"]}]} "#,
        r#"{"peer":"b","hub":"a","issued":1,"groups":[]}"#,
    ] {
        assert_eq!(dec(bad).unwrap_err(), ManifestError::NotCanonical, "{bad}");
    }
    for bad in [
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"g","members":["y@a","x@a"]}]}"#,
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"g","members":["x@a","x@a"]}]}"#,
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"g","members":[]}]}"#,
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"g","members":["x"]}]}"#,
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"G","members":["x@a"]}]}"#,
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"h","members":["x@a"]},{"name":"g","members":["x@a"]}]}"#,
        r#"{"hub":"A","peer":"b","issued":1,"groups":[]}"#,
        r#"{"hub":"a","peer":"b","issued":1,"groups":[],"x":1}"#,
        r#"{"hub":"a","peer":"b","issued":1,"groups":[{"name":"g","members":["x@a"],"y":[[[[]]]]}]}"#,
        r#"[]"#,
        "",
    ] {
        assert!(
            matches!(dec(bad).unwrap_err(), ManifestError::Malformed(_)),
            "{bad}"
        );
    }
    let many = GroupManifest {
        groups: (0..=MAX_SHARED_GROUPS)
            .map(|i| SharedGroup {
                name: format!("g{i:03}"),
                members: v(&["x@a"]),
            })
            .collect(),
        ..manifest()
    };
    assert_eq!(
        GroupManifest::decode(&many.canonical_bytes()).unwrap_err(),
        ManifestError::TooMany
    );
    let big = GroupManifest {
        groups: vec![SharedGroup {
            name: "g".into(),
            members: (0..=MAX_GROUP_MEMBERS)
                .map(|i| format!("m{i:04}@a"))
                .collect(),
        }],
        ..manifest()
    };
    assert_eq!(
        GroupManifest::decode(&big.canonical_bytes()).unwrap_err(),
        ManifestError::TooMany
    );
    assert_eq!(
        GroupManifest::decode(&vec![b' '; MAX_MANIFEST_BYTES + 1]).unwrap_err(),
        ManifestError::TooLarge
    );
}

#[test]
fn agreement_needs_both_sides_and_the_same_members() {
    let ab = v(&["alice-bank@hub-a", "dave-bank@hub-b"]);
    let abe = v(&["alice-bank@hub-a", "dave-bank@hub-b", "erin-bank@hub-b"]);
    assert_eq!(agreement(Some(&ab), Some(&ab)), Agreement::Agreed);
    assert_eq!(agreement(None, Some(&ab)), Agreement::NotSharedHere);
    assert_eq!(agreement(None, None), Agreement::NotSharedHere);
    assert_eq!(agreement(Some(&ab), None), Agreement::NotSharedThere);
    let differ = agreement(Some(&ab), Some(&abe));
    assert_eq!(
        differ,
        Agreement::Differ {
            only_here: vec![],
            only_there: v(&["erin-bank@hub-b"])
        }
    );
    assert_eq!(
        differ.to_string(),
        "held back: members differ (only here: -; only at the peer: erin-bank@hub-b)"
    );
    assert_eq!(Agreement::Agreed.to_string(), "agreed");
}

/// Every level x every audience shape x agreed or not x straight or
/// relayed x no-forward: each cell decided by the rule as written in the
/// module docs, and the cells that matter most asserted by name.
#[test]
fn decision_table() {
    let peers = v(&["b", "c"]);
    let straight = v(&["a"]);
    let relayed = v(&["a", "c"]);
    let shapes: [(&str, Vec<AudienceRef>); 7] = [
        ("none", vec![]),
        ("org", vec!["org:carol".parse().unwrap()]),
        ("person", vec!["person:carol/ann".parse().unwrap()]),
        ("agreed group", vec!["group:sc".parse().unwrap()]),
        ("other group", vec!["group:other".parse().unwrap()]),
        (
            "agreed group and org",
            vec!["group:sc".parse().unwrap(), "org:carol".parse().unwrap()],
        ),
        (
            "both groups",
            vec!["group:other".parse().unwrap(), "group:sc".parse().unwrap()],
        ),
    ];
    let agreed = |g: &str| g == "sc";
    for tlp in ALL_LEVELS {
        for (shape, audience) in &shapes {
            for path in [&straight, &relayed] {
                for no_forward in [false, true] {
                    let got = may_forward_in_groups(
                        Crossing {
                            tlp,
                            no_forward,
                            origin_hub: "a",
                            hub_path: path,
                        },
                        Link {
                            from_hub: path.last().unwrap(),
                            to_hub: "b",
                            origin_peers: &peers,
                            origin_removed: &[],
                        },
                        audience,
                        &agreed,
                    );
                    let names_sc = audience.iter().any(|a| a.to_string() == "group:sc");
                    let names_group = audience.iter().any(|a| matches!(a, AudienceRef::Group(_)));
                    let want: Result<Vec<String>, GroupRefusal> = match tlp {
                        Tlp::AmberStrict | Tlp::Red => Err(Refusal::Level(tlp).into()),
                        Tlp::Clear | Tlp::Green if no_forward => Err(Refusal::NoForward.into()),
                        Tlp::Clear | Tlp::Green => Ok(vec![]),
                        Tlp::Amber if !names_group => Err(Refusal::AmberWithoutGroup.into()),
                        Tlp::Amber if !names_sc => Err(GroupRefusal::NoAgreedGroup),
                        Tlp::Amber if path.len() > 1 => Err(GroupRefusal::Relayed),
                        Tlp::Amber if no_forward => Err(Refusal::NoForward.into()),
                        Tlp::Amber => Ok(v(&["sc"])),
                    };
                    assert_eq!(
                        got, want,
                        "{tlp} {shape} path {path:?} no_forward {no_forward}"
                    );
                }
            }
        }
    }
    // The origin no longer peering with the receiver holds for AMBER too.
    assert_eq!(
        may_forward_in_groups(
            Crossing {
                tlp: Tlp::Amber,
                no_forward: false,
                origin_hub: "a",
                hub_path: &straight,
            },
            Link {
                from_hub: "a",
                to_hub: "b",
                origin_peers: &v(&["c"]),
                origin_removed: &[],
            },
            &["group:sc".parse().unwrap()],
            &agreed,
        ),
        Err(GroupRefusal::Route(Refusal::OriginDoesNotPeer {
            origin: "a".into(),
            hub: "b".into()
        }))
    );
}

mod received {
    use super::*;

    fn entry(k: &SigningKey, org: &str) -> DirectoryKey {
        crate::directory::test_entry(k, org, 0)
    }

    struct World {
        alice: SigningKey,
        dir_a: KeyDirectory,
        group: AudienceOpening,
        org: AudienceOpening,
    }

    fn world() -> World {
        let alice = SigningKey::generate().unwrap();
        World {
            dir_a: KeyDirectory {
                version: 1,
                issued: format_rfc3339(0),
                expires: format_rfc3339(i64::from(u32::MAX)),
                keys: vec![entry(&alice, "alice-bank")],
                peers: v(&["b", "c"]),
                default_lifetimes: Default::default(),
                federated: Vec::new(),
                removed_peers: Vec::new(),
            },
            alice,
            group: AudienceOpening::new("group:sc".parse().unwrap(), "ab".repeat(16)),
            org: AudienceOpening::new("org:carol".parse().unwrap(), "cd".repeat(16)),
        }
    }

    fn amber(_w: &World, entries: &[&AudienceOpening]) -> Statement {
        let mut s = sample("alice-bank");
        s.tlp = Tlp::Amber;
        s.audience = entries.iter().map(|o| o.commitment()).collect();
        s
    }

    fn sign(w: &World, s: &Statement) -> Envelope {
        w.alice
            .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
            .unwrap()
    }

    fn prov(path: &[&str]) -> Vec<u8> {
        Provenance {
            hub_path: v(path),
            ..Provenance::at_origin(path[0], None)
        }
        .canonical_bytes()
    }

    fn agreed(g: &str) -> bool {
        g == "sc"
    }

    #[test]
    fn an_amber_item_in_an_agreed_group_is_taken_with_its_group_opening() {
        let w = world();
        let s = amber(&w, &[&w.group, &w.org]);
        let env = sign(&w, &s);
        let got = verify_forwarded_any(
            &env,
            &prov(&["a"]),
            std::slice::from_ref(&w.group),
            &w.dir_a,
            "a",
            "b",
            &agreed,
        )
        .unwrap();
        assert_eq!(got.groups, v(&["sc"]));
        assert_eq!(got.openings, vec![w.group.clone()]);
        assert_eq!(got.received.provenance.hub_path, v(&["a", "b"]));
        assert_eq!(got.received.verified.statement, s);
        // The member at b checks the same, trusting its hub on agreement.
        let delivered = verify_delivered_any(
            &env,
            &prov(&["a", "b"]),
            std::slice::from_ref(&w.group),
            &w.dir_a,
        )
        .unwrap();
        assert_eq!(delivered.key, got.received.key);
    }

    #[test]
    fn openings_disagreement_relaying_and_other_levels_are_refused() {
        let w = world();
        let s = amber(&w, &[&w.group, &w.org]);
        let env = sign(&w, &s);
        let refused = |openings: &[AudienceOpening], path: &[&str], from: &str| {
            verify_forwarded_any(&env, &prov(path), openings, &w.dir_a, from, "b", &agreed)
                .unwrap_err()
        };
        // An org entry revealed to the peer; an opening of nothing signed;
        // the same opening twice; none at all.
        assert_eq!(
            refused(&[w.group.clone(), w.org.clone()], &["a"], "a"),
            GroupRefusal::Openings.into()
        );
        let stray = AudienceOpening::new("group:sc".parse().unwrap(), "ef".repeat(16));
        assert_eq!(
            refused(&[stray], &["a"], "a"),
            GroupRefusal::Openings.into()
        );
        assert_eq!(
            refused(&[w.group.clone(), w.group.clone()], &["a"], "a"),
            GroupRefusal::Openings.into()
        );
        assert_eq!(
            refused(&[], &["a"], "a"),
            GroupRefusal::Route(Refusal::AmberWithoutGroup).into()
        );
        // Relayed by c.
        assert_eq!(
            refused(std::slice::from_ref(&w.group), &["a", "c"], "c"),
            GroupRefusal::Relayed.into()
        );
        // Not agreed at b.
        assert_eq!(
            verify_forwarded_any(
                &env,
                &prov(&["a"]),
                std::slice::from_ref(&w.group),
                &w.dir_a,
                "a",
                "b",
                &|_| false
            )
            .unwrap_err(),
            GroupRefusal::NoAgreedGroup.into()
        );
        // The member refuses an AMBER item delivered without a group
        // opening, or relayed.
        assert!(verify_delivered_any(&env, &prov(&["a", "b"]), &[], &w.dir_a).is_err());
        assert!(verify_delivered_any(
            &env,
            &prov(&["a", "c", "b"]),
            std::slice::from_ref(&w.group),
            &w.dir_a
        )
        .is_err());
        // A forged author stays a verification failure.
        let mut bad = env.clone();
        bad.payload[12] ^= 1;
        assert!(matches!(
            verify_forwarded_any(
                &bad,
                &prov(&["a"]),
                std::slice::from_ref(&w.group),
                &w.dir_a,
                "a",
                "b",
                &agreed
            ),
            Err(GroupReceiveError::Receive(ReceiveError::Verify { .. }))
        ));
        // Openings never ride beside a GREEN item; AMBER+STRICT and RED
        // never cross, with or without a group.
        let green = sample("alice-bank");
        assert_eq!(
            verify_forwarded_any(
                &sign(&w, &green),
                &prov(&["a"]),
                std::slice::from_ref(&w.group),
                &w.dir_a,
                "a",
                "b",
                &agreed
            )
            .unwrap_err(),
            GroupRefusal::Openings.into()
        );
        assert!(verify_forwarded_any(
            &sign(&w, &green),
            &prov(&["a"]),
            &[],
            &w.dir_a,
            "a",
            "b",
            &agreed
        )
        .is_ok());
        for tlp in [Tlp::AmberStrict, Tlp::Red] {
            let mut s = amber(&w, &[&w.group]);
            s.tlp = tlp;
            assert!(verify_forwarded_any(
                &sign(&w, &s),
                &prov(&["a"]),
                std::slice::from_ref(&w.group),
                &w.dir_a,
                "a",
                "b",
                &agreed
            )
            .is_err());
        }
        // No-forward holds for AMBER too.
        let mut kept = amber(&w, &[&w.group]);
        kept.no_forward = true;
        assert_eq!(
            verify_forwarded_any(
                &sign(&w, &kept),
                &prov(&["a"]),
                std::slice::from_ref(&w.group),
                &w.dir_a,
                "a",
                "b",
                &agreed
            )
            .unwrap_err(),
            GroupRefusal::Route(Refusal::NoForward).into()
        );
    }
}
