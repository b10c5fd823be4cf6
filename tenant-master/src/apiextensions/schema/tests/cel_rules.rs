use serde_json::{json, Value};

use super::{check, check_update, refused, schema, F};

fn spec_schema(props: Value, rules: Value) -> super::Structural {
    schema(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props, "x-kubernetes-validations": rules}}}))
}

#[test]
fn failing_rules_report_upstream_messages() {
    let st = spec_schema(
        json!({"min": {"type": "integer"}, "max": {"type": "integer"}, "name": {"type": "string"}}),
        json!([
            {"rule": "self.min <= self.max"},
            {"rule": "self.name != 'bad'", "message": "name must not be bad", "fieldPath": ".name", "reason": "FieldValueForbidden"},
            {"rule": "self.name.size() < 10", "messageExpression": "'name is ' + string(self.name.size()) + ' long'"},
            {"rule": "has(self.name)", "reason": "FieldValueRequired", "message": "name is required"}
        ]),
    );
    assert!(check(&st, json!({"spec": {"min": 1, "max": 2, "name": "ok"}})).is_empty());
    assert_eq!(check(&st, json!({"spec": {"min": 3, "max": 2, "name": "ok"}})), vec!["spec: Invalid value: \"object\": failed rule: self.min <= self.max"]);
    assert_eq!(check(&st, json!({"spec": {"min": 1, "max": 2, "name": "bad"}})), vec!["spec.name: Forbidden: name must not be bad"]);
    assert_eq!(check(&st, json!({"spec": {"min": 1, "max": 2, "name": "abcdefghijkl"}})), vec!["spec: Invalid value: \"object\": name is 12 long"]);
    // rules reading the absent field fail to evaluate, as upstream's ("no such key")
    assert_eq!(
        check(&st, json!({"spec": {"min": 1, "max": 2}})),
        vec![
            "spec: Invalid value: \"object\": no such key: name evaluating rule: name must not be bad",
            "spec: Invalid value: \"object\": no such key: name evaluating rule: self.name.size() < 10",
            "spec: Required value: name is required"
        ]
    );
    // a missing field read by a rule is an evaluation error
    let got = check(&st, json!({"spec": {"max": 2, "name": "ok"}}));
    assert_eq!(got, vec!["spec: Invalid value: \"object\": no such key: min evaluating rule: self.min <= self.max"]);
}

#[test]
fn root_rules_and_blocking_errors() {
    let st = schema(json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('w')"}],
        "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}, "x-kubernetes-validations": [{"rule": "self.n > 0"}]}}}));
    assert_eq!(
        check(&st, json!({"metadata": {"name": "x"}, "spec": {"n": 1}})),
        vec!["<nil>: Invalid value: \"object\": failed rule: self.metadata.name.startsWith('w')"]
    );
    // a type error blocks the rules, as upstream
    assert_eq!(
        check(&st, json!({"metadata": {"name": "x"}, "spec": {"n": "1"}})),
        vec![
            "spec.n: Invalid value: \"string\": spec.n in body must be of type integer: \"string\"",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        ]
    );
}

#[test]
fn root_metadata_shows_name_and_generate_name() {
    let st = schema(json!({"type": "object", "properties": {"metadata": {"type": "object"}},
        "x-kubernetes-validations": [{"rule": "self.metadata.name.size() <= 5 && self.kind == 'Widget'", "message": "short names only"}]}));
    assert!(check(&st, json!({"kind": "Widget", "metadata": {"name": "abc", "labels": {"a": "b"}}})).is_empty());
    assert_eq!(check(&st, json!({"kind": "Widget", "metadata": {"name": "abcdefg"}})), vec!["<nil>: Invalid value: \"object\": short names only"]);
    let got = refused(json!({"type": "object", "x-kubernetes-validations": [{"rule": "has(self.metadata.labels)"}]}));
    assert!(got[0].contains("undefined field 'labels'"), "{got:?}");
}

#[test]
fn transition_rules_and_optional_old_self() {
    let st = spec_schema(
        json!({"id": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "id is immutable"}]},
               "gen": {"type": "integer", "x-kubernetes-validations": [{"rule": "oldSelf.orValue(0) <= self", "optionalOldSelf": true, "message": "gen may not decrease"}]}}),
        json!([]),
    );
    // not evaluated on create (no old value), except optionalOldSelf rules
    assert!(check(&st, json!({"spec": {"id": "a", "gen": 1}})).is_empty());
    assert_eq!(check(&st, json!({"spec": {"id": "a", "gen": -1}})), vec!["spec.gen: Invalid value: \"integer\": gen may not decrease"]);
    let old = json!({"spec": {"id": "a", "gen": 5}});
    assert!(check_update(&st, json!({"spec": {"id": "a", "gen": 6}}), old.clone()).is_empty());
    assert_eq!(check_update(&st, json!({"spec": {"id": "b", "gen": 6}}), old.clone()), vec!["spec.id: Invalid value: \"string\": id is immutable"]);
    assert_eq!(check_update(&st, json!({"spec": {"id": "a", "gen": 4}}), old), vec!["spec.gen: Invalid value: \"integer\": gen may not decrease"]);
}

#[test]
fn unchanged_values_are_ratcheted() {
    let st = spec_schema(json!({"n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self < 10"}]}, "m": {"type": "integer"}}), json!([]));
    let old = json!({"spec": {"n": 20, "m": 1}});
    assert!(check_update(&st, json!({"spec": {"n": 20, "m": 2}}), old.clone()).is_empty());
    assert_eq!(check_update(&st, json!({"spec": {"n": 30, "m": 1}}), old), vec!["spec.n: Invalid value: \"integer\": failed rule: self < 10"]);
}

#[test]
fn map_list_items_correlate_for_transition_rules() {
    let st = spec_schema(
        json!({"items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.v >= oldSelf.v", "message": "v may not decrease"}]}}}),
        json!([]),
    );
    let old = json!({"spec": {"items": [{"name": "a", "v": 2}, {"name": "b", "v": 2}]}});
    assert!(check_update(&st, json!({"spec": {"items": [{"name": "b", "v": 3}, {"name": "a", "v": 2}, {"name": "c", "v": 0}]}}), old.clone()).is_empty());
    assert_eq!(
        check_update(&st, json!({"spec": {"items": [{"name": "b", "v": 1}]}}), old),
        vec!["spec.items[0]: Invalid value: \"object\": v may not decrease"]
    );
}

#[test]
fn kubernetes_libraries_work() {
    let st = spec_schema(
        json!({
            "mem": {"type": "string"}, "cpu": {"x-kubernetes-int-or-string": true},
            "addr": {"type": "string"}, "net": {"type": "string"}, "endpoint": {"type": "string"},
            "list": {"type": "array", "items": {"type": "integer"}}, "names": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 20}},
            "timeout": {"type": "string", "format": "duration"}, "at": {"type": "string", "format": "date-time"},
            "x-y": {"type": "string"}, "namespace": {"type": "string"},
            "labels": {"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string"}}
        }),
        json!([
            {"rule": "quantity(self.mem).isLessThan(quantity('2Gi')) && quantity(self.mem).compareTo(quantity('1Mi')) > 0", "message": "mem"},
            {"rule": "isQuantity(string(self.cpu)) || self.cpu == 2", "message": "cpu"},
            {"rule": "isIP(self.addr) && ip(self.addr).family() == 4 && cidr(self.net).containsIP(self.addr)", "message": "ip"},
            {"rule": "isURL(self.endpoint) && url(self.endpoint).getScheme() == 'https' && url(self.endpoint).getHostname() == 'example.com'", "message": "url"},
            {"rule": "self.list.isSorted() && self.list.sum() == 6 && self.list.max() == 3 && self.list.indexOf(2) == 1", "message": "lists"},
            {"rule": "sets.contains(self.names, ['a']) && self.names.all(n, n.lowerAscii() == n) && self.names.exists(n, n == 'b')", "message": "sets"},
            {"rule": "self.names.map(n, n + '!').filter(n, n.startsWith('a')).size() == 1 && self.names.join(',').split(',').size() == 2", "message": "macros"},
            {"rule": "self.timeout < duration('1h') && self.at > timestamp('2020-01-01T00:00:00Z')", "message": "time"},
            {"rule": "self.x__dash__y.find('[0-9]+') == '42' && self.__namespace__ == 'ns'", "message": "escaping"},
            {"rule": "'team' in self.labels && self.labels.all(k, k.matches('^[a-z]+$'))", "message": "maps"}
        ]),
    );
    let good = json!({"spec": {"mem": "1Gi", "cpu": "500m", "addr": "10.0.0.5", "net": "10.0.0.0/8", "endpoint": "https://example.com:8443/x?a=1",
        "list": [1, 2, 3], "names": ["a", "b"], "timeout": "30m", "at": "2024-05-06T07:08:09Z", "x-y": "v42", "namespace": "ns", "labels": {"team": "x"}}});
    assert_eq!(check(&st, good.clone()), Vec::<String>::new());
    let mut bad = good;
    bad["spec"]["mem"] = json!("4Gi");
    bad["spec"]["addr"] = json!("192.168.0.1");
    bad["spec"]["endpoint"] = json!("http://example.com");
    bad["spec"]["list"] = json!([3, 2, 1]);
    bad["spec"]["timeout"] = json!("2h");
    bad["spec"]["labels"] = json!({"Team": "x"});
    let got = check(&st, bad);
    for m in ["mem", "ip", "url", "lists", "time", "maps"] {
        assert!(got.contains(&format!("spec: Invalid value: \"object\": {m}")), "{m} missing in {got:#?}");
    }
    assert_eq!(got.len(), 6, "{got:#?}");
}

#[test]
fn rules_that_cannot_compile_are_refused() {
    let p = format!("{F}.properties[spec].x-kubernetes-validations[0]");
    let bad = |rule: &str| {
        refused(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "array", "items": {"type": "string"}}}, "x-kubernetes-validations": [{"rule": rule}]}}}),
        )
    };
    let got = bad("self.nope > 1");
    assert!(got[0].starts_with(&format!("{p}.rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.nope > 1\"")), "{got:?}");
    assert!(got[0].contains("compilation failed: ERROR: <input>:1:5: undefined field 'nope'"), "{got:?}");
    assert!(bad("self.n +").iter().any(|e| e.contains("compilation failed: ERROR: <input>:1:")));
    assert!(bad("frobnicate(self.n)").iter().any(|e| e.contains("undeclared reference to 'frobnicate'")));
    assert!(bad("self.n + 1").iter().any(|e| e.ends_with("cel expression must evaluate to a bool")));
    assert!(bad("other.n > 1").iter().any(|e| e.contains("undeclared reference to 'other'")));
    // oldSelf on the items of a list that is not a map list cannot be correlated
    let got = refused(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"s": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 10,
        "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}}}}),
    );
    assert_eq!(got, vec![format!("{F}.properties[spec].properties[s].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within {F}.properties[spec].properties[s]")]);
    // optionalOldSelf without oldSelf
    let got = refused(
        json!({"type": "object", "properties": {"spec": {"type": "string", "x-kubernetes-validations": [{"rule": "self != ''", "optionalOldSelf": true}]}}}),
    );
    assert_eq!(got, vec![format!("{p}.optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule")]);
}

#[test]
fn expensive_rules_are_refused() {
    // a regex over every unbounded string of an unbounded list
    let got = refused(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"s": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": [{"rule": "self.s.all(x, x.matches('^a+$'))"}]}}}));
    assert!(got.iter().any(|e| e.contains("estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)")), "{got:#?}");
    // bounded, it is fine
    schema(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"s": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 64}}},
        "x-kubernetes-validations": [{"rule": "self.s.all(x, x.matches('^a+$'))"}]}}}),
    );
}

#[test]
fn defaults_must_satisfy_the_rules() {
    let got = refused(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "n": {"type": "integer", "default": 20, "x-kubernetes-validations": [{"rule": "self < 10"}]}}}}}));
    assert_eq!(got, vec![format!("{F}.properties[spec].properties[n].default: Invalid value: \"integer\": failed rule: self < 10")]);
}

#[test]
fn cel_crate_standard_functions() {
    let e = |src: &str| super::super::cel::eval_for_test(src, &json!({"a": [1, 2], "s": "Hello"}));
    assert_eq!(e("self.s.lowerAscii() == 'hello' && self.s.indexOf('l') == 2 && self.s.substring(1, 3) == 'el'").unwrap(), cel::Value::Bool(true));
    assert_eq!(e("sets.intersects(self.a, [2, 3]) && !sets.equivalent(self.a, [1])").unwrap(), cel::Value::Bool(true));
    assert_eq!(e("self.a.exists_one(x, x > 1) && size(self.a) == 2 && self.s.matches('^H')").unwrap(), cel::Value::Bool(true));
    assert_eq!(e("'abc 123 def 45'.findAll('[0-9]+') == ['123', '45']").unwrap(), cel::Value::Bool(true));
    assert_eq!(
        e("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && ip('::1').isLoopback() && string(cidr('10.1.2.3/8').masked()) == '10.0.0.0/8'").unwrap(),
        cel::Value::Bool(true)
    );
    assert_eq!(e("quantity('1.5').isInteger() == false && quantity('2k').asInteger() == 2000 && quantity('1Gi').add(quantity('1Gi')).isGreaterThan(quantity('1.9Gi'))").unwrap(), cel::Value::Bool(true));
}

#[test]
fn atomic_maps_cannot_correlate_old_self() {
    let got = refused(json!({"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-map-type": "atomic",
        "properties": {"a": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}}}));
    assert_eq!(got, vec![format!("{F}.properties[spec].properties[a].x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within {F}.properties[spec]")]);
}
