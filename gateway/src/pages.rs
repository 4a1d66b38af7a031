//! The people's pages: the candidate's interview page and the recruiter's dashboard.
//!
//! They are static files (plain ES modules, no build step) served from `GATEWAY_WEB_DIR`
//! (`web` by default): `app/` at `/` and `/app/`, and the chart library npm installed under
//! `node_modules/uplot/dist` at `/vendor/uplot/`. They call only the public API, with the
//! bearer token the sign-in or invitation link carried, so they sit outside the edge's guard.

use std::path::Path;

use axum::Router;
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderName, HeaderValue, header};
use iv_platform::http;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// What the pages may load and talk to: only this origin (no CDN, no other host), and the
/// camera's frames through the page's own canvas.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The pages' routes. A missing file (or a directory the install step has not filled) is the
/// gateway's JSON 404, never a listing.
pub fn router(dir: &Path) -> Router {
    let app = dir.join("app");
    let files = ServeDir::new(&app).not_found_service(http::not_found.into_service());
    let vendor = ServeDir::new(dir.join("node_modules/uplot/dist"))
        .not_found_service(http::not_found.into_service());
    Router::new()
        .route_service("/", ServeFile::new(app.join("index.html")))
        .nest_service("/app", files)
        .nest_service("/vendor/uplot", vendor)
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        // Sign-in and invitation links carry a token in the query: never pass it on.
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The camera is this origin's only; nothing else of the device is asked for.
        .layer(header_layer(
            HeaderName::from_static("permissions-policy"),
            "camera=(self), microphone=(), geolocation=()",
        ))
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}
