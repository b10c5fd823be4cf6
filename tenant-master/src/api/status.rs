//! API errors as `metav1.Status`, with the codes and reasons kube-apiserver uses.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

/// One field-level validation failure (a `metav1.StatusCause`).
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    pub detail: String,
}

/// The kinds of field errors upstream's `field.ErrorType` knows, with their reasons.
#[derive(Debug, Clone)]
pub enum FieldErrorKind {
    Invalid(Value),
    Required,
    Forbidden,
    TooLong(usize),
    Duplicate(Value),
    NotSupported(Value, Vec<String>),
    TooMany,
    /// A reference to something that does not exist (`field.NotFound`).
    NotFound(Value),
    /// An invalid value already written the way Go's `%#v` prints the typed value upstream
    /// reports (maps, slices, structs such as `v1.LabelSelector{...}`).
    InvalidRendered(String),
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::Invalid(value.into()), detail: detail.into() }
    }
    /// An invalid value whose text is given as upstream prints it (see [`crate::api::gofmt`]).
    pub fn invalid_rendered(field: impl Into<String>, rendered: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::InvalidRendered(rendered.into()), detail: detail.into() }
    }
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::NotFound(value.into()), detail: String::new() }
    }
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::Required, detail: detail.into() }
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::Forbidden, detail: detail.into() }
    }
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::TooLong(max), detail: String::new() }
    }
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError { field: field.into(), kind: FieldErrorKind::Duplicate(value.into()), detail: String::new() }
    }
    pub fn not_supported(field: impl Into<String>, value: impl Into<Value>, valid: &[&str]) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported(value.into(), valid.iter().map(|s| s.to_string()).collect()),
            detail: String::new(),
        }
    }

    fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Invalid(_) | FieldErrorKind::InvalidRendered(_) => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong(_) => "FieldValueTooLong",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::NotFound(_) => "FieldValueNotFound",
        }
    }

    /// The message without the field path, as in a StatusCause.
    pub fn body(&self) -> String {
        let with = |head: String| if self.detail.is_empty() { head } else { format!("{head}: {}", self.detail) };
        match &self.kind {
            FieldErrorKind::Invalid(v) => with(format!("Invalid value: {}", render_value(v))),
            FieldErrorKind::InvalidRendered(r) => with(format!("Invalid value: {r}")),
            FieldErrorKind::Required => with("Required value".into()),
            FieldErrorKind::Forbidden => with("Forbidden".into()),
            FieldErrorKind::TooLong(max) => format!("Too long: may not be more than {max} bytes"),
            FieldErrorKind::Duplicate(v) => format!("Duplicate value: {}", render_value(v)),
            FieldErrorKind::NotSupported(v, valid) => {
                let quoted: Vec<String> = valid.iter().map(|s| format!("\"{s}\"")).collect();
                format!("Unsupported value: {}: supported values: {}", render_value(v), quoted.join(", "))
            }
            FieldErrorKind::TooMany => with("Too many".into()),
            FieldErrorKind::NotFound(v) => with(format!("Not found: {}", render_value(v))),
        }
    }
}

fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => super::gofmt::quote(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// An error answered to the client as a `metav1.Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// Shorthand for results of API operations.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: None }
    }
    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let mut d = json!({});
        if !name.is_empty() {
            d["name"] = json!(name);
        }
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        if !kind.is_empty() {
            d["kind"] = json!(kind);
        }
        self.details = Some(d);
        self
    }
    /// 404 NotFound: `pods "x" not found` (resource is the plural, possibly `resource.group`).
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(group, resource)))
            .with_details(group, resource, name)
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(group, resource)))
            .with_details(group, resource, name)
    }
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(group, resource)),
        )
        .with_details(group, resource, name)
    }
    /// The optimistic-concurrency conflict clients retry on.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    /// 422 Invalid with one cause per field error, formatted as kube-apiserver's
    /// `errors.NewInvalid`: the kind qualified by its group (`Deployment.apps`), the messages
    /// aggregated without repeats (`ErrorList.ToAggregate`), bracketed when more than one.
    pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let mut parts: Vec<String> = Vec::new();
        for e in errs {
            let msg = format!("{}: {}", e.field, e.body());
            if !parts.contains(&msg) {
                parts.push(msg);
            }
        }
        let joined = if parts.len() == 1 { parts[0].clone() } else { format!("[{}]", parts.join(", ")) };
        let mut e = Self::new(422, "Invalid", format!("{} \"{name}\" is invalid: {joined}", qualified_kind(group, kind)))
            .with_details(group, kind, name);
        let causes: Vec<Value> = errs
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field}))
            .collect();
        e.details.as_mut().unwrap()["causes"] = Value::Array(causes);
        e
    }
    /// 422 as apimachinery's `NewGenericServerResponse` builds it: a fixed message, the
    /// server's own text as the one cause (used for patches that cannot be applied).
    pub fn unprocessable_server_response(msg: impl Into<String>) -> Self {
        let mut e = Self::new(422, "Invalid", "the server rejected our request due to an error in our request");
        e.details = Some(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": msg.into()}]}));
        e
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", msg)
    }
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", msg)
    }
    pub fn method_not_supported(resource: &str, verb: &str) -> Self {
        Self::new(405, "MethodNotAllowed", format!("{verb} is not supported on resources of kind \"{resource}\""))
    }
    pub fn not_acceptable(msg: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", msg)
    }
    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct})"))
    }
    pub fn gone(msg: impl Into<String>) -> Self {
        Self::new(410, "Expired", msg)
    }
    pub fn too_large(msg: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", msg)
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {msg}"))
    }
    pub fn timeout(msg: impl Into<String>) -> Self {
        Self::new(504, "Timeout", msg)
    }
    pub fn not_found_path() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
            .with_details("", "", "")
    }

    /// The Status object sent on the wire.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // An error that is no API status upstream (reason Unknown) has no reason on the wire.
        if self.reason.is_empty() {
            s.as_object_mut().unwrap().shift_remove("reason");
        }
        if let Some(d) = &self.details {
            if d.as_object().map(|o| !o.is_empty()).unwrap_or(false) {
                s["details"] = d.clone();
            } else {
                s["details"] = json!({});
            }
        }
        s
    }
}

/// `schema.GroupKind.String()`: `Kind` for the core group, `Kind.group` otherwise.
fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") }
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        (code, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
