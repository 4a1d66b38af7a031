//! The public API's OpenAPI 3.1 document at [`PATH`]: the services' parts, each generated from
//! its handlers and their types, merged into one under the gateway's address, with the bearer
//! scheme and the roles each route admits. Served without a token: it is what other teams read
//! before they have one.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

#[derive(utoipa::OpenApi)]
#[openapi(tags((name = "api", description = "This document.")))]
struct ApiDoc;

/// The document, serialised once at start.
#[derive(Clone)]
struct Serialised(Bytes);

/// The gateway's own route, described like the services' ones.
fn api() -> OpenApiRouter<Serialised> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(openapi))
}

/// The whole public API, as one document.
pub fn document() -> utoipa::openapi::OpenApi {
    iv_platform::openapi::document([
        interview_service::routes::openapi(),
        scoring_service::routes::openapi(),
        emotion_service::routes::openapi(),
        api().split_for_parts().1,
    ])
}

/// This document: the public API, its security scheme and each route's roles.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "api", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)))]
async fn openapi(State(Serialised(json)): State<Serialised>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}

/// The document's route.
pub fn router() -> Result<Router, serde_json::Error> {
    let json = Serialised(Bytes::from(serde_json::to_vec(&document())?));
    Ok(api().split_for_parts().0.with_state(json))
}

#[cfg(test)]
mod tests;
