//! The maps as serde maps (feature `serde`): JSON round trips.
#![cfg(all(feature = "serde", not(loom)))]

use std::collections::BTreeMap;

use gosync::map::{RwMap, ShardedMap, SyncMap, TreeMap};

fn sample() -> BTreeMap<String, Vec<u32>> {
    (0..50u32)
        .map(|i| (format!("key{i}"), (0..i % 5).collect()))
        .collect()
}

/// Serializes `m`, checks it is the JSON object of `sample()`, and returns the JSON.
fn to_json<M: serde::Serialize>(m: &M) -> String {
    let json = serde_json::to_string(m).unwrap();
    let back: BTreeMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sample(), "serialized as a map with every entry once");
    json
}

#[test]
fn sync_map_round_trip() {
    let m: SyncMap<String, Vec<u32>> = sample().into_iter().collect();
    let json = to_json(&m);
    let back: SyncMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.len(), 50);
    assert_eq!(back.load("key7"), Some(vec![0, 1]));
}

#[test]
fn sharded_map_round_trip() {
    let m: ShardedMap<String, Vec<u32>> = sample().into_iter().collect();
    let json = to_json(&m);
    let back: ShardedMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.len(), 50);
    assert_eq!(back.get("key9"), Some(vec![0, 1, 2, 3]));
}

#[test]
fn rw_map_round_trip() {
    let m: RwMap<String, Vec<u32>> = sample().into_iter().collect();
    let json = to_json(&m);
    let back: RwMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.len(), 50);
    assert_eq!(back.get("key3"), Some(vec![0, 1, 2]));
}

#[test]
fn tree_map_round_trip_in_order() {
    let m: TreeMap<String, Vec<u32>> = sample().into_iter().collect();
    let json = to_json(&m);
    // A TreeMap serializes in key order, like BTreeMap.
    assert_eq!(json, serde_json::to_string(&sample()).unwrap());
    let back: TreeMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.first().map(|e| e.0), Some("key0".to_string()));
}

#[test]
fn a_non_map_is_rejected_with_a_clear_error() {
    let err = serde_json::from_str::<SyncMap<String, u32>>("[1, 2]").unwrap_err();
    assert!(err.to_string().contains("expected a map"), "{err}");
}
