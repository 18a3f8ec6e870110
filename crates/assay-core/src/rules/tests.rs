//! Tests of the rule catalogue and of validation.

use super::*;

fn fields() -> Vec<FieldInfo<'static>> {
    vec![
        FieldInfo {
            name: "id",
            field_type: "Integral",
        },
        FieldInfo {
            name: "email",
            field_type: "String",
        },
        FieldInfo {
            name: "at",
            field_type: "Timestamp",
        },
    ]
}

fn check(rule: &str, f: &[&str], props: Value) -> Result<Value, Vec<FieldError>> {
    let fs: Vec<String> = f.iter().map(|s| s.to_string()).collect();
    validate(
        &Definition {
            rule,
            fields: &fs,
            coverage: None,
            filter: None,
            properties: &props,
        },
        &fields(),
    )
}

#[test]
fn the_catalogue_has_every_api_rule_once() {
    assert_eq!(RULES.len(), 49);
    let mut names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    let sorted = names.clone();
    names.sort();
    names.dedup();
    assert_eq!(names, sorted, "alphabetical and unique");
}

#[test]
fn unknown_and_unsupported_rules_are_refused_with_a_reason() {
    let e = check("isUnique", &["id"], json!({})).unwrap_err();
    assert!(e[0].message.contains("did you mean 'unique'"), "{e:?}");
    let e = check("isAddress", &["email"], json!({})).unwrap_err();
    assert!(e[0].message.contains("not supported"), "{e:?}");
}

#[test]
fn fields_and_types_are_checked() {
    let e = check("between", &["email"], json!({"min": 1, "max": 2})).unwrap_err();
    assert!(e[0].message.contains("Integral or Fractional"), "{e:?}");
    let e = check("notNull", &["nope"], json!({})).unwrap_err();
    assert!(e[0].message.contains("no field 'nope'"), "{e:?}");
    let e = check("fieldCount", &["id"], json!({"value": 3})).unwrap_err();
    assert_eq!(e[0].field, "fields");
}

#[test]
fn properties_are_required_typed_and_defaulted() {
    let e = check("between", &["id"], json!({"min": 5})).unwrap_err();
    assert_eq!(e[0].field, "properties.max");
    let e = check("between", &["id"], json!({"min": 5, "max": 1})).unwrap_err();
    assert!(e[0].message.contains("less than min"), "{e:?}");
    let ok = check("between", &["id"], json!({"min": 1, "max": 5})).unwrap();
    assert_eq!(ok["inclusive_min"], json!(true));
    let e = check("afterDateTime", &["at"], json!({"datetime": "yesterday"})).unwrap_err();
    assert!(e[0].message.contains("ISO-8601"), "{e:?}");
    assert!(check("afterDateTime", &["at"], json!({"datetime": "2024-01-01"})).is_ok());
    let e = check("isType", &["email"], json!({"field_type": "Text"})).unwrap_err();
    assert!(e[0].message.contains("Integral"), "{e:?}");
    let e = check("volumetric", &[], json!({"comparison": "Absolute Value"})).unwrap_err();
    assert!(e[0].message.contains("min, max"), "{e:?}");
}

#[test]
fn coverage_and_filter_follow_the_rule() {
    let props = json!({"value": 3});
    let fs: Vec<String> = vec![];
    let e = validate(
        &Definition {
            rule: "fieldCount",
            fields: &fs,
            coverage: Some(0.5),
            filter: Some("id > 1"),
            properties: &props,
        },
        &fields(),
    )
    .unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
}
