//! Federation (issue 20), the slice that exists: the author's signed
//! `no_forward` mark through a real hub, and the receive rules of
//! `isac_core::federation` over what a real hub serves (its signed
//! directory, its delivered envelopes). Peering between hub processes is
//! not built yet; its tests (a triangle of hubs) come with it.

use isac_core::federation::{verify_forwarded, Provenance, ReceiveError, Refusal};
use isac_core::Envelope;
use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use member_agent::Sinks;

fn green(domain: &str, no_forward: bool) -> IndicatorDraft {
    IndicatorDraft {
        domain: Some(domain.into()),
        tlp: Some("green".into()),
        title: Some(format!("{domain} serves a malicious installer")),
        no_forward: no_forward.then_some(true),
        ..Default::default()
    }
}

#[tokio::test]
async fn no_forward_crosses_the_hub_signed_and_stops_at_the_hub_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let home = publish(&alice, green("home.example", true)).await.unwrap();
    let away = publish(&alice, green("away.example", false)).await.unwrap();
    let jsonl = dir.path().join("bob.jsonl");
    let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
    bob.sync(false, &mut sink).await.unwrap();

    // Members of the author's own hub get it, verified, the mark intact.
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let record = |id: &str| {
        records
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not delivered"))
    };
    assert_eq!(record(&home.id)["statement"]["no_forward"], true);
    assert!(record(&away.id)["statement"].get("no_forward").is_none());
    assert_eq!(record(&home.id)["signature"]["status"], "verified");

    // What a peer hub "hub-b" would decide about these exact envelopes from
    // this hub ("hub-a"), against the directory the hub signed.
    let envelope = |id: &str| {
        let (_, _, json) = bob.store.lock().unwrap().show(id).unwrap().unwrap();
        Envelope::from_json(&json).unwrap()
    };
    let mut dir_a = bob.directory().expect("bob pinned the hub's directory");
    dir_a.peers = vec!["hub-b".into()];
    let provenance = Provenance::at_origin("hub-a", 1, None).canonical_bytes();
    assert_eq!(
        verify_forwarded(&envelope(&home.id), &provenance, &dir_a, "hub-a", "hub-b").unwrap_err(),
        ReceiveError::Refused(Refusal::NoForward)
    );
    let got = verify_forwarded(&envelope(&away.id), &provenance, &dir_a, "hub-a", "hub-b").unwrap();
    assert_eq!(got.verified.statement.source, "alice-bank");
    assert_eq!(got.provenance.hub_path, ["hub-a", "hub-b"]);
    // Once hub-a drops hub-b, nothing of hub-a's is taken, not via hub-c.
    dir_a.peers = vec!["hub-c".into()];
    let via_c = Provenance::at_origin("hub-a", 1, None)
        .held_by("hub-c")
        .canonical_bytes();
    assert!(matches!(
        verify_forwarded(&envelope(&away.id), &via_c, &dir_a, "hub-c", "hub-b").unwrap_err(),
        ReceiveError::Refused(Refusal::OriginDoesNotPeer { .. })
    ));
}
