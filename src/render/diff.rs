//! A readable difference between two JSON documents (for `edgetrace check`):
//! one line per changed leaf, as `path: old → new`, with paths such as
//! `findings[0].severity`.  Objects compare key by key (sorted), arrays
//! index by index; a length change is one line plus the changed indices.

use serde_json::Value;

/// Differences listed at most (a wholly different capture would list thousands).
pub const MAX_DIFFS: usize = 500;

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// Appends the differences between `old` and `new` under `path` to `out`.
pub fn json_diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFFS || old == new {
        return;
    }
    let here = if path.is_empty() { "(root)" } else { path };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => json_diff(&p, x, y, out),
                    (Some(x), None) => out.push(format!("{p}: {} → (removed)", short(x))),
                    (None, Some(y)) => out.push(format!("{p}: (absent) → {}", short(y))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{here}: {} → {} entries", a.len(), b.len()));
            }
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => json_diff(&p, x, y, out),
                    (Some(x), None) => out.push(format!("{p}: {} → (removed)", short(x))),
                    (None, Some(y)) => out.push(format!("{p}: (absent) → {}", short(y))),
                    (None, None) => {}
                }
                if out.len() >= MAX_DIFFS {
                    break;
                }
            }
        }
        _ => out.push(format!("{here}: {} → {}", short(old), short(new))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_values() {
        let a = json!({"findings": [{"id": "x", "severity": "warning"}], "n": 1, "gone": true});
        let b =
            json!({"findings": [{"id": "x", "severity": "error"}, {"id": "y"}], "n": 1, "new": 2});
        let mut d = Vec::new();
        json_diff("", &a, &b, &mut d);
        assert_eq!(
            d,
            [
                "findings: 1 → 2 entries",
                "findings[0].severity: \"warning\" → \"error\"",
                "findings[1]: (absent) → {\"id\":\"y\"}",
                "gone: true → (removed)",
                "new: (absent) → 2",
            ]
        );
        let mut d = Vec::new();
        json_diff("", &a, &a, &mut d);
        assert!(d.is_empty());
    }
}
