//! OpenAPI documents (`/openapi/v2`, `/openapi/v3`). Not served yet: clients get a 404, as from a
//! server that publishes no OpenAPI, and fall back accordingly.

use axum::response::{IntoResponse, Response};
use http::HeaderMap;

use crate::api::status::ApiError;
use crate::api::ApiState;

pub fn serve(_st: &ApiState, _path: &str, _headers: &HeaderMap) -> Response {
    ApiError::not_found_path().into_response()
}
