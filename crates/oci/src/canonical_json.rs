//! JSON with object keys sorted, whatever map type the value uses.
//!
//! oci-spec stores labels and annotations in `HashMap`s, whose iteration order
//! changes from run to run; digests must not.

use serde::Serialize;
use serde_json::{Map, Value};

pub(crate) fn to_canonical_json<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = sort_keys(serde_json::to_value(value)?);
    serde_json::to_vec(&value)
}

/// Rebuilds objects with keys inserted in sorted order, so the output is
/// sorted whether or not serde_json's `preserve_order` feature is enabled.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut sorted = Map::new();
            for (key, value) in entries {
                sorted.insert(key, sort_keys(value));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn hash_map_keys_come_out_sorted() {
        let map: HashMap<String, HashMap<String, u32>> = (0..50)
            .map(|i| {
                (
                    format!("k{i:02}"),
                    HashMap::from([(format!("z{i}"), i), ("a".into(), 0)]),
                )
            })
            .collect();
        let text = String::from_utf8(to_canonical_json(&map).unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"k00":{"a":0,"z0":0},"k01":{"a":0,"z1":1}"#),
            "{text}"
        );
    }
}
