//! The checked-in schemas under `schemas/` are the published contract. This test fails
//! when a type and its schema disagree; `UPDATE_SCHEMAS=1 cargo test -p shop-events`
//! rewrites them after a deliberate change (review the diff).

use std::collections::BTreeSet;
use std::path::PathBuf;

use shop_events::schema::all_contracts;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[test]
fn every_event_has_a_checked_in_schema_that_matches_its_type() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for contract in all_contracts() {
        let path = schema_dir().join(format!("{}.json", contract.detail_type));
        let generated = serde_json::to_string_pretty(&contract.schema).unwrap() + "\n";
        if update {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(checked_in) if checked_in == generated => {}
            Ok(_) => stale.push(format!("{} differs from its type", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "run UPDATE_SCHEMAS=1 cargo test -p shop-events and review: {stale:#?}"
    );
}

#[test]
fn no_schema_file_outlives_its_event() {
    let known: BTreeSet<String> = all_contracts()
        .iter()
        .map(|c| format!("{}.json", c.detail_type))
        .collect();
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(known.contains(&name), "schemas/{name} has no event type");
    }
}

#[test]
fn the_contract_covers_all_twenty_one_events_of_six_capabilities() {
    let contracts = all_contracts();
    assert_eq!(contracts.len(), 21);
    let names: BTreeSet<_> = contracts.iter().map(|c| c.detail_type).collect();
    assert_eq!(names.len(), 21, "detail-types are unique");
    let sources: BTreeSet<_> = contracts.iter().map(|c| c.source).collect();
    assert_eq!(
        sources,
        BTreeSet::from([
            "shop.basket",
            "shop.catalog",
            "shop.inventory",
            "shop.ordering",
            "shop.payment",
            "shop.shipping"
        ])
    );
}
