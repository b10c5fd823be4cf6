//! The protobuf form of `/openapi/v2` (`application/com.github.proto-openapi.spec.v2.v1.0+protobuf`):
//! gnostic's `openapi.v2.Document`, the message kubectl and client-go decode. Like
//! kube-openapi (which parses its own JSON with gnostic), it is made from the JSON document, so
//! both forms carry the same content; values of any type (extensions, `default`, `enum`)
//! travel as YAML text in `Any.yaml`, as gnostic writes them.

use serde_json::{Map, Value};

/// prost types generated from `proto/openapiv2/OpenAPIv2.proto` by `build.rs`.
#[allow(clippy::all, missing_docs, dead_code)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/openapi.v2.rs"));
}

use pb::*;

fn s(o: &Map<String, Value>, k: &str) -> String {
    o.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn b(o: &Map<String, Value>, k: &str) -> bool {
    o.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn f(o: &Map<String, Value>, k: &str) -> f64 {
    o.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn i(o: &Map<String, Value>, k: &str) -> i64 {
    o.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn strs(o: &Map<String, Value>, k: &str) -> Vec<String> {
    match o.get(k) {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        Some(Value::String(x)) => vec![x.clone()],
        _ => Vec::new(),
    }
}

fn any(v: &Value) -> pb::Any {
    pb::Any { value: None, yaml: serde_yaml_ng::to_string(v).unwrap_or_default() }
}

fn opt_any(o: &Map<String, Value>, k: &str) -> Option<pb::Any> {
    o.get(k).map(any)
}

fn anys(o: &Map<String, Value>, k: &str) -> Vec<pb::Any> {
    o.get(k).and_then(Value::as_array).map(|a| a.iter().map(any).collect()).unwrap_or_default()
}

/// The `x-` keys of an object.
fn extensions(o: &Map<String, Value>) -> Vec<NamedAny> {
    o.iter().filter(|(k, _)| k.starts_with("x-")).map(|(k, v)| NamedAny { name: k.clone(), value: Some(any(v)) }).collect()
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn external_docs(o: &Map<String, Value>) -> Option<ExternalDocs> {
    o.get("externalDocs").and_then(Value::as_object).map(|d| ExternalDocs { description: s(d, "description"), url: s(d, "url"), vendor_extension: extensions(d) })
}

/// A JSON Schema object.
pub fn schema(v: &Value) -> Schema {
    let Some(o) = v.as_object() else { return Schema::default() };
    Schema {
        r#ref: s(o, "$ref"),
        format: s(o, "format"),
        title: s(o, "title"),
        description: s(o, "description"),
        default: opt_any(o, "default"),
        multiple_of: f(o, "multipleOf"),
        maximum: f(o, "maximum"),
        exclusive_maximum: b(o, "exclusiveMaximum"),
        minimum: f(o, "minimum"),
        exclusive_minimum: b(o, "exclusiveMinimum"),
        max_length: i(o, "maxLength"),
        min_length: i(o, "minLength"),
        pattern: s(o, "pattern"),
        max_items: i(o, "maxItems"),
        min_items: i(o, "minItems"),
        unique_items: b(o, "uniqueItems"),
        max_properties: i(o, "maxProperties"),
        min_properties: i(o, "minProperties"),
        required: strs(o, "required"),
        r#enum: anys(o, "enum"),
        additional_properties: o.get("additionalProperties").map(|a| {
            Box::new(AdditionalPropertiesItem {
                oneof: Some(match a {
                    Value::Bool(x) => additional_properties_item::Oneof::Boolean(*x),
                    other => additional_properties_item::Oneof::Schema(Box::new(schema(other))),
                }),
            })
        }),
        r#type: o.contains_key("type").then(|| TypeItem { value: strs(o, "type") }),
        items: o.get("items").map(|it| ItemsItem {
            schema: match it {
                Value::Array(a) => a.iter().map(schema).collect(),
                other => vec![schema(other)],
            },
        }),
        all_of: o.get("allOf").and_then(Value::as_array).map(|a| a.iter().map(schema).collect()).unwrap_or_default(),
        properties: o.get("properties").and_then(Value::as_object).map(|p| Properties {
            additional_properties: p.iter().map(|(k, v)| NamedSchema { name: k.clone(), value: Some(schema(v)) }).collect(),
        }),
        discriminator: s(o, "discriminator"),
        read_only: b(o, "readOnly"),
        xml: None,
        external_docs: external_docs(o),
        example: opt_any(o, "example"),
        vendor_extension: extensions(o),
    }
}

fn parameter(v: &Value) -> Parameter {
    let o = obj(v);
    let oneof = match o.get("in").and_then(Value::as_str).unwrap_or("") {
        "body" => parameter::Oneof::BodyParameter(BodyParameter {
            description: s(&o, "description"),
            name: s(&o, "name"),
            r#in: s(&o, "in"),
            required: b(&o, "required"),
            schema: o.get("schema").map(schema),
            vendor_extension: extensions(&o),
        }),
        "path" => nonbody(non_body_parameter::Oneof::PathParameterSubSchema(PathParameterSubSchema {
            required: b(&o, "required"),
            r#in: s(&o, "in"),
            description: s(&o, "description"),
            name: s(&o, "name"),
            r#type: s(&o, "type"),
            format: s(&o, "format"),
            default: opt_any(&o, "default"),
            unique_items: b(&o, "uniqueItems"),
            r#enum: anys(&o, "enum"),
            vendor_extension: extensions(&o),
            ..std::default::Default::default()
        })),
        "header" => nonbody(non_body_parameter::Oneof::HeaderParameterSubSchema(HeaderParameterSubSchema {
            required: b(&o, "required"),
            r#in: s(&o, "in"),
            description: s(&o, "description"),
            name: s(&o, "name"),
            r#type: s(&o, "type"),
            format: s(&o, "format"),
            default: opt_any(&o, "default"),
            unique_items: b(&o, "uniqueItems"),
            r#enum: anys(&o, "enum"),
            vendor_extension: extensions(&o),
            ..std::default::Default::default()
        })),
        "formData" => nonbody(non_body_parameter::Oneof::FormDataParameterSubSchema(FormDataParameterSubSchema {
            required: b(&o, "required"),
            r#in: s(&o, "in"),
            description: s(&o, "description"),
            name: s(&o, "name"),
            r#type: s(&o, "type"),
            format: s(&o, "format"),
            default: opt_any(&o, "default"),
            unique_items: b(&o, "uniqueItems"),
            r#enum: anys(&o, "enum"),
            vendor_extension: extensions(&o),
            ..std::default::Default::default()
        })),
        _ => nonbody(non_body_parameter::Oneof::QueryParameterSubSchema(QueryParameterSubSchema {
            required: b(&o, "required"),
            r#in: s(&o, "in"),
            description: s(&o, "description"),
            name: s(&o, "name"),
            r#type: s(&o, "type"),
            format: s(&o, "format"),
            default: opt_any(&o, "default"),
            unique_items: b(&o, "uniqueItems"),
            r#enum: anys(&o, "enum"),
            vendor_extension: extensions(&o),
            ..std::default::Default::default()
        })),
    };
    Parameter { oneof: Some(oneof) }
}

fn nonbody(x: non_body_parameter::Oneof) -> parameter::Oneof {
    parameter::Oneof::NonBodyParameter(NonBodyParameter { oneof: Some(x) })
}

fn parameters_item(v: &Value) -> ParametersItem {
    let oneof = match v.get("$ref").and_then(Value::as_str) {
        Some(r) => parameters_item::Oneof::JsonReference(JsonReference { r#ref: r.to_string(), description: String::new() }),
        None => parameters_item::Oneof::Parameter(parameter(v)),
    };
    ParametersItem { oneof: Some(oneof) }
}

fn parameters(o: &Map<String, Value>) -> Vec<ParametersItem> {
    o.get("parameters").and_then(Value::as_array).map(|a| a.iter().map(parameters_item).collect()).unwrap_or_default()
}

fn responses(v: &Value) -> Responses {
    let o = obj(v);
    let response_code = o
        .iter()
        .filter(|(k, _)| !k.starts_with("x-"))
        .map(|(code, r)| {
            let ro = obj(r);
            let value = match ro.get("$ref").and_then(Value::as_str) {
                Some(x) => response_value::Oneof::JsonReference(JsonReference { r#ref: x.to_string(), description: String::new() }),
                None => response_value::Oneof::Response(Response {
                    description: s(&ro, "description"),
                    schema: ro.get("schema").map(|x| SchemaItem { oneof: Some(schema_item::Oneof::Schema(schema(x))) }),
                    headers: None,
                    examples: None,
                    vendor_extension: extensions(&ro),
                }),
            };
            NamedResponseValue { name: code.clone(), value: Some(ResponseValue { oneof: Some(value) }) }
        })
        .collect();
    Responses { response_code, vendor_extension: extensions(&o) }
}

fn operation(v: &Value) -> Operation {
    let o = obj(v);
    Operation {
        tags: strs(&o, "tags"),
        summary: s(&o, "summary"),
        description: s(&o, "description"),
        external_docs: external_docs(&o),
        operation_id: s(&o, "operationId"),
        produces: strs(&o, "produces"),
        consumes: strs(&o, "consumes"),
        parameters: parameters(&o),
        responses: o.get("responses").map(responses),
        schemes: strs(&o, "schemes"),
        deprecated: b(&o, "deprecated"),
        security: Vec::new(),
        vendor_extension: extensions(&o),
    }
}

fn path_item(v: &Value) -> PathItem {
    let o = obj(v);
    let op = |k: &str| o.get(k).map(operation);
    PathItem {
        r#ref: s(&o, "$ref"),
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        options: op("options"),
        head: op("head"),
        patch: op("patch"),
        parameters: parameters(&o),
        vendor_extension: extensions(&o),
    }
}

fn security_requirements(v: Option<&Value>) -> Vec<SecurityRequirement> {
    let Some(Value::Array(a)) = v else { return Vec::new() };
    a.iter()
        .map(|req| SecurityRequirement {
            additional_properties: obj(req)
                .iter()
                .map(|(k, scopes)| NamedStringArray {
                    name: k.clone(),
                    value: Some(StringArray { value: scopes.as_array().map(|x| x.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default() }),
                })
                .collect(),
        })
        .collect()
}

fn security_definitions(v: Option<&Value>) -> Option<SecurityDefinitions> {
    let o = v?.as_object()?;
    let items = o
        .iter()
        .filter_map(|(name, d)| {
            let d = d.as_object()?;
            let item = match d.get("type").and_then(Value::as_str)? {
                "apiKey" => security_definitions_item::Oneof::ApiKeySecurity(ApiKeySecurity {
                    r#type: s(d, "type"),
                    name: s(d, "name"),
                    r#in: s(d, "in"),
                    description: s(d, "description"),
                    vendor_extension: extensions(d),
                }),
                "basic" => security_definitions_item::Oneof::BasicAuthenticationSecurity(BasicAuthenticationSecurity {
                    r#type: s(d, "type"),
                    description: s(d, "description"),
                    vendor_extension: extensions(d),
                }),
                _ => return None,
            };
            Some(NamedSecurityDefinitionsItem { name: name.clone(), value: Some(SecurityDefinitionsItem { oneof: Some(item) }) })
        })
        .collect();
    Some(SecurityDefinitions { additional_properties: items })
}

/// The gnostic document of a Swagger 2.0 JSON document.
pub fn document(v: &Value) -> Document {
    let o = obj(v);
    let info = o.get("info").and_then(Value::as_object).map(|i| Info {
        title: s(i, "title"),
        version: s(i, "version"),
        description: s(i, "description"),
        terms_of_service: s(i, "termsOfService"),
        contact: None,
        license: None,
        vendor_extension: extensions(i),
    });
    let paths = o.get("paths").and_then(Value::as_object).map(|p| Paths {
        vendor_extension: extensions(p),
        path: p.iter().filter(|(k, _)| k.starts_with('/')).map(|(k, v)| NamedPathItem { name: k.clone(), value: Some(path_item(v)) }).collect(),
    });
    let definitions = o.get("definitions").and_then(Value::as_object).map(|d| Definitions {
        additional_properties: d.iter().map(|(k, v)| NamedSchema { name: k.clone(), value: Some(schema(v)) }).collect(),
    });
    let params = o.get("parameters").and_then(Value::as_object).map(|p| ParameterDefinitions {
        additional_properties: p.iter().map(|(k, v)| NamedParameter { name: k.clone(), value: Some(parameter(v)) }).collect(),
    });
    Document {
        swagger: s(&o, "swagger"),
        info,
        host: s(&o, "host"),
        base_path: s(&o, "basePath"),
        schemes: strs(&o, "schemes"),
        consumes: strs(&o, "consumes"),
        produces: strs(&o, "produces"),
        paths,
        definitions,
        parameters: params,
        responses: None,
        security: security_requirements(o.get("security")),
        security_definitions: security_definitions(o.get("securityDefinitions")),
        tags: Vec::new(),
        external_docs: external_docs(&o),
        vendor_extension: extensions(&o),
    }
}

/// The protobuf bytes of a Swagger 2.0 JSON document.
pub fn encode(v: &Value) -> Vec<u8> {
    prost::Message::encode_to_vec(&document(v))
}
