//! The JSON Schemas in schema/ are generated from the output model
//! (schemars) and committed; this test fails when they are stale (run it
//! with EDGETRACE_UPDATE_SCHEMA=1 to rewrite them, then review the diff and
//! say in README's schema history what changed).  Every command's real output
//! on the samples and the lab captures is validated against its schema.

use std::path::PathBuf;

use serde_json::Value;

use super::common::{edgetrace, root, shared};

fn schemas() -> Vec<(&'static str, Value)> {
    use edgetrace::model;
    let v = |s: schemars::Schema| serde_json::to_value(s).unwrap();
    vec![
        ("flows", v(schemars::schema_for!(model::FlowsReport))),
        ("stun", v(schemars::schema_for!(model::stun::StunReport))),
        ("turn", v(schemars::schema_for!(model::turn::TurnReport))),
        ("sip", v(schemars::schema_for!(model::sip::SipReport))),
        ("ice", v(schemars::schema_for!(model::ice::IceReport))),
        ("tls", v(schemars::schema_for!(model::tls::TlsReport))),
        ("report", v(schemars::schema_for!(model::report::Report))),
    ]
}

#[test]
fn committed_schemas_are_current() {
    let dir = root().join("schema");
    let update = std::env::var_os("EDGETRACE_UPDATE_SCHEMA").is_some();
    let mut stale = Vec::new();
    for (name, schema) in schemas() {
        let path = dir.join(format!("{name}.schema.json"));
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale schema(s) {stale:?}: the output model changed; run EDGETRACE_UPDATE_SCHEMA=1 cargo test schema, review, and note the change in README's schema history"
    );
}

/// A validator for the JSON Schema keywords schemars emits (draft 2020-12):
/// $ref to $defs, type, properties/required/additionalProperties, items and
/// prefixItems, enum, const, anyOf/oneOf/allOf, minimum.
fn validate(v: &Value, s: &Value, root: &Value, path: &str, errs: &mut Vec<String>) {
    if errs.len() > 20 {
        return;
    }
    let Some(s) = s.as_object() else {
        if s == &Value::Bool(false) {
            errs.push(format!("{path}: not allowed"));
        }
        return;
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        validate(v, &root["$defs"][name], root, path, errs);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            _ => false,
        });
        if !ok {
            errs.push(format!("{path}: {v} is not {types:?}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!("{path}: {v} not in {e:?}"));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errs.push(format!("{path}: {v} != const {c}"));
        }
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if x < min {
            errs.push(format!("{path}: {x} < {min}"));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let n = alts
                .iter()
                .filter(|a| {
                    let mut e = Vec::new();
                    validate(v, a, root, path, &mut e);
                    e.is_empty()
                })
                .count();
            if n == 0 || (key == "oneOf" && n > 1) {
                errs.push(format!("{path}: {n} of the {key} alternatives match {v}"));
            }
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for a in all {
            validate(v, a, root, path, errs);
        }
    }
    if let Some(o) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !o.contains_key(r) {
                errs.push(format!("{path}: missing {r}"));
            }
        }
        for (k, x) in o {
            let p = format!("{path}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(x, ps, root, &p, errs),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{p}: not in the schema")),
                    Some(ap) => validate(x, ap, root, &p, errs),
                    None if props.is_some() => errs.push(format!("{p}: not in the schema")),
                    None => {}
                },
            }
        }
    }
    if let Some(a) = v.as_array() {
        let prefix = s.get("prefixItems").and_then(Value::as_array);
        for (i, x) in a.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match prefix.and_then(|pi| pi.get(i)) {
                Some(ps) => validate(x, ps, root, &p, errs),
                None => {
                    if let Some(items) = s.get("items") {
                        validate(x, items, root, &p, errs);
                    }
                }
            }
        }
    }
}

#[test]
fn real_output_matches_the_schemas() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    if let Some(s) = shared() {
        for e in std::fs::read_dir(s.join("captures")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "pcap") {
                inputs.push(p);
            }
        }
    }
    let mut checked = 0;
    for (name, schema) in schemas() {
        for p in &inputs {
            let out = edgetrace().args([name, "--json"]).arg(p).output().unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let mut errs = Vec::new();
            validate(&v, &schema, &schema, "$", &mut errs);
            assert!(
                errs.is_empty(),
                "{name} on {}:\n{}",
                p.display(),
                errs.join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked >= 35, "{checked}");
}

/// The validator is not a rubber stamp.
#[test]
fn validator_catches_wrong_output() {
    let schema =
        serde_json::to_value(schemars::schema_for!(edgetrace::model::report::Report)).unwrap();
    let out = edgetrace()
        .args(["report", "--json"])
        .arg(root().join("samples/sip-invite-udp.pcap"))
        .output()
        .unwrap();
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut errs = Vec::new();
    validate(&v, &schema, &schema, "$", &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    v["counts"]["sip_dialogs"] = Value::String("one".into());
    v["capture"].as_object_mut().unwrap().remove("frames");
    v["surprise"] = Value::Bool(true);
    validate(&v, &schema, &schema, "$", &mut errs);
    assert!(errs.len() >= 3, "{errs:?}");
}
