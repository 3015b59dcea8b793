//! `GET /api/openapi.json`: the API described as OpenAPI 3.1, generated from the handlers' own
//! declarations (utoipa) rather than written by hand.
//!
//! Each resource module registers its handlers with `.routes(routes!(handler))`, and each handler
//! carries a `#[utoipa::path(…)]` attribute naming its method, path, parameters, body and
//! answers: the router and the document come from that one declaration, so a route cannot be
//! served without being described. The error answers are named once here (one type per status,
//! each `{"error":{"code","message"}}`), and an attribute lists those its route can give:
//! `responses((status = 200, body = AdminCourse), Unauthorized, Forbidden, NotFound, Unavailable)`.
//! A route answering something other than JSON for programs (an HTML page) is served with a
//! plain `.route(…)` and named in [`UNDOCUMENTED_ROUTES`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::domain::{CourseId, LessonId};
use crate::state::AppState;

/// Routes the server answers that the document leaves out, as `"METHOD /path"`: the
/// dashboard's page and assets (for people, not programs), and the data only that page reads
/// (its summary and its event stream change with the page, and the stream never ends, which
/// no schema-driven client can test). The test comparing the document with docs/API.md skips
/// them (and checks that they are routed).
pub const UNDOCUMENTED_ROUTES: &[&str] = &[
    "GET /admin",
    "GET /admin/dashboard.js",
    "GET /admin/dashboard.css",
    "GET /api/admin/dashboard/summary",
    "GET /api/admin/dashboard/events",
];

/// The name of the bearer-token security scheme, as `security((…))` attributes name it.
pub const BEARER: &str = "bearer";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of the API", body = Object))
)]
async fn openapi_json() -> Response {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| {
        Bytes::from(
            super::openapi()
                .to_json()
                .expect("the OpenAPI document serializes"),
        )
    });
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body.clone(),
    )
        .into_response()
}

/// The document before the routes add their paths: what the API is, how it authenticates, and
/// the answers routes share.
pub fn base() -> OpenApi {
    let mut components = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (name, schema) in [
        (ErrorBody::name(), ErrorBody::schema()),
        (ErrorDetail::name(), ErrorDetail::schema()),
        (ErrorCode::name(), ErrorCode::schema()),
        (cachette::Outcome::name(), cachette::Outcome::schema()),
        (CourseId::name(), CourseId::schema()),
        (LessonId::name(), LessonId::schema()),
    ] {
        components = components.schema(name, schema);
    }
    for error in ERRORS {
        components = components.response(error.name, error.response());
    }
    let mut api = OpenApi::new(
        InfoBuilder::new()
            .title("YouCode API")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "The YouCode course platform API; docs/API.md explains each route. Every error \
                 answers `{\"error\":{\"code\",\"message\"}}`; a method a path does not take \
                 answers 405 `method_not_allowed`, an unknown path 404 `not_found`.",
            ))
            .build(),
        utoipa::openapi::Paths::new(),
    );
    api.components = Some(components.build());
    api
}

/// An error answer routes share, named in the document's `components/responses`.
struct ErrorAnswer {
    status: u16,
    name: &'static str,
    description: &'static str,
    /// Whether it says in `Retry-After` when to try again.
    retry_after: bool,
}

const ERRORS: &[ErrorAnswer] = &[
    ErrorAnswer {
        status: 400,
        name: "BadRequest",
        description: "`invalid_param`: a path or query parameter is malformed (the message \
                      names it); `invalid_body`: the body is not a JSON object, is malformed, has \
                      an unknown field, or a field fails validation",
        retry_after: false,
    },
    ErrorAnswer {
        status: 401,
        name: "Unauthorized",
        description: "`unauthorized`: no bearer token, or an unknown, revoked or expired one",
        retry_after: false,
    },
    ErrorAnswer {
        status: 403,
        name: "Forbidden",
        description: "`forbidden`: the user's role may not use the route",
        retry_after: false,
    },
    ErrorAnswer {
        status: 404,
        name: "NotFound",
        description: "`not_found`: no such resource, or one the user may not see",
        retry_after: false,
    },
    ErrorAnswer {
        status: 408,
        name: "RequestTimeout",
        description: "`request_timeout`: the body did not arrive whole within the body timeout",
        retry_after: false,
    },
    ErrorAnswer {
        status: 409,
        name: "Conflict",
        description: "`conflict`: the email is already registered",
        retry_after: false,
    },
    ErrorAnswer {
        status: 413,
        name: "PayloadTooLarge",
        description: "`payload_too_large`: the body is larger than the route accepts",
        retry_after: false,
    },
    ErrorAnswer {
        status: 429,
        name: "TooManyRequests",
        description: "`too_many_requests`: too many failed sign-ins for the account or from the \
                      client's address",
        retry_after: true,
    },
    ErrorAnswer {
        status: 503,
        name: "Unavailable",
        description: "`unavailable`: the database cannot be reached, a page took too long to \
                      fetch, or passwords are being checked at their limit",
        retry_after: true,
    },
];

impl ErrorAnswer {
    fn response(&self) -> utoipa::openapi::Response {
        let mut response = ResponseBuilder::new()
            .description(self.description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            );
        if self.retry_after {
            let seconds = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0.0));
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(seconds)
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            );
        }
        response.build()
    }

    /// Its entry in an operation's `responses`: a reference to the shared answer.
    fn reference(status: u16) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let error = ERRORS
            .iter()
            .find(|error| error.status == status)
            .expect("every error type has its answer");
        let reference = Ref::new(format!("#/components/responses/{}", error.name));
        BTreeMap::from([(status.to_string(), RefOr::Ref(reference))])
    }
}

/// One type per shared error answer, for `#[utoipa::path(responses(…))]` to list.
macro_rules! error_answers {
    ($($(#[$doc:meta])* $name:ident = $status:literal;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                    ErrorAnswer::reference($status)
                }
            }
        )*
    };
}

error_answers! {
    /// 400 `invalid_param` or `invalid_body`.
    BadRequest = 400;
    /// 401 `unauthorized`.
    Unauthorized = 401;
    /// 403 `forbidden`.
    Forbidden = 403;
    /// 404 `not_found`.
    NotFound = 404;
    /// 408 `request_timeout`.
    RequestTimeout = 408;
    /// 409 `conflict`.
    Conflict = 409;
    /// 413 `payload_too_large`.
    PayloadTooLarge = 413;
    /// 429 `too_many_requests`, with `Retry-After`.
    TooManyRequests = 429;
    /// 503 `unavailable`, with `Retry-After`.
    Unavailable = 503;
}
