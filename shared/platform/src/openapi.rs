//! What every service's part of the public API's OpenAPI document shares: the bearer scheme each
//! route names with the roles it admits, the one error body every failure answers with, and how
//! the parts become one document the gateway serves.
//!
//! Each service describes its own routes on its handlers (`#[utoipa::path]`) and types
//! (`ToSchema`); nothing here is written by hand but these shared pieces.

use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr, ServerBuilder};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::errors::ErrorBody;

/// The security scheme's name: a JWT as `Authorization: Bearer`, from the backend's own issuer
/// or an organisation's identity provider (the gateway verifies it). Each route names it with
/// the roles it admits as the requirement's scopes: `security(("bearer" = ["admin", "recruiter"]))`.
pub const BEARER: &str = "bearer";

/// The shared response every operation refers to for its failures.
const ERROR_RESPONSE: &str = "Error";

/// Adds what every part shares: the bearer scheme, the error body, and a `4XX`/`5XX` answer on
/// every operation, so that a client knows every failure's shape without reading each route.
pub struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A token of the backend's issuer (members, invitations, services) or of \
                         an organisation's identity provider; the scopes listed on an operation \
                         are the roles it admits.",
                    ))
                    .build(),
            ),
        );
        components
            .schemas
            .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
        components.responses.insert(
            ERROR_RESPONSE.into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "The request failed: `code` says why, in the same words for every route \
                         (see the status table in the README).",
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                            .build(),
                    )
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for op in operations_mut(item) {
                for class in ["4XX", "5XX"] {
                    op.responses
                        .responses
                        .entry(class.into())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(ERROR_RESPONSE)));
                }
            }
        }
    }
}

fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The public API as one document: the services' parts merged under the gateway's address.
pub fn document(parts: impl IntoIterator<Item = OpenApi>) -> OpenApi {
    let mut doc = OpenApi::builder()
        .info(
            InfoBuilder::new()
                .title("AI interview backend")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The public API, as the gateway serves it: interviews, consent and rights, \
                     the organisation's settings, scores and reports, and face analysis. The \
                     live interview runs over the WebSocket at `/ws/interviews/{id}`.",
                ))
                .build(),
        )
        .servers(Some([ServerBuilder::new().url("/").build()]))
        .build();
    for part in parts {
        doc.merge(part);
    }
    Shared.modify(&mut doc);
    doc
}

/// Every operation the document describes, as (method, path).
pub fn operations_of(doc: &OpenApi) -> Vec<(http::Method, String)> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            (http::Method::GET, &item.get),
            (http::Method::PUT, &item.put),
            (http::Method::POST, &item.post),
            (http::Method::DELETE, &item.delete),
            (http::Method::PATCH, &item.patch),
        ];
        for (method, op) in methods {
            if op.is_some() {
                out.push((method, path.clone()));
            }
        }
    }
    out
}

/// Bodies that are not JSON, described by their media type.
macro_rules! media {
    ($($name:ident: $doc:literal => $media:literal),* $(,)?) => {$(
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .content_media_type($media)
                    .into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

media! {
    Pdf: "A PDF document." => "application/pdf",
    Jpeg: "A JPEG image." => "image/jpeg",
    Png: "A PNG image." => "image/png",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(thing))]
    struct Part;

    /// A described operation.
    #[utoipa::path(get, path = "/api/v1/things/{id}", params(("id" = String, Path)),
        security(("bearer" = ["admin"])), responses((status = 200, description = "the thing")))]
    #[allow(dead_code)]
    async fn thing() {}

    #[test]
    fn every_operation_gets_the_bearer_scheme_and_the_shared_failure_answers() {
        use utoipa::OpenApi as _;
        let doc = document([Part::openapi()]);
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        assert_eq!(
            json["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let op = &json["paths"]["/api/v1/things/{id}"]["get"];
        assert_eq!(op["security"][0][BEARER][0], "admin");
        assert_eq!(
            op["responses"]["4XX"]["$ref"],
            "#/components/responses/Error"
        );
        assert_eq!(
            op["responses"]["5XX"]["$ref"],
            "#/components/responses/Error"
        );
        assert!(json["components"]["schemas"]["ErrorBody"].is_object());
        assert_eq!(
            operations_of(&doc),
            vec![(http::Method::GET, "/api/v1/things/{id}".to_string())]
        );
    }
}
