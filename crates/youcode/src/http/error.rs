//! The API's one error type and its JSON shape.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{HeaderValue, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;
use crate::domain::{FieldError, ParamError};

/// Every way a request can fail. The response is always
/// `{"error":{"code":"…","message":"…"}}`; a 5xx never shows internals (they go to the log).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    InvalidParam(#[from] ParamError),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this route is for admins")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the request body is larger than this route accepts")]
    PayloadTooLarge,
    #[error("too many failed sign-ins; try again later")]
    TooManyRequests { retry_after: std::time::Duration },
    #[error("the server is busy; try again shortly")]
    Busy,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::InvalidParam(_) | AppError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Busy | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds a client should wait before trying again, for 429 and 503 answers.
    fn retry_after(&self) -> Option<u64> {
        match self {
            // Whole seconds, rounded up: a client retrying on time is not refused again.
            AppError::TooManyRequests { retry_after } => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            AppError::Busy | AppError::Unavailable(_) => Some(1),
            _ => None,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            AppError::InvalidParam(_) => ErrorCode::InvalidParam,
            AppError::InvalidBody(_) => ErrorCode::InvalidBody,
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Forbidden => ErrorCode::Forbidden,
            AppError::NotFound => ErrorCode::NotFound,
            AppError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            AppError::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            AppError::RequestTimeout => ErrorCode::RequestTimeout,
            AppError::Busy | AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// What every error answers: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    code: ErrorCode,
    /// For people; a 5xx never shows internals.
    message: String,
}

/// The kind of an error, stable for clients to branch on (docs/API.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidParam,
    InvalidBody,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    TooManyRequests,
    RequestTimeout,
    Unavailable,
    Internal,
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound => AppError::NotFound,
            DbError::Conflict => AppError::Conflict("already exists"),
            DbError::Sql(error) if unreachable(&error) => AppError::Unavailable(error.into()),
            DbError::Sql(error) => AppError::Internal(error.into()),
        }
    }
}

/// Whether `error` says the database could not be reached or went away (a restart, a cut
/// network, no connection to give) rather than that the statement failed: a 503, not a 500.
fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        // 53300: too many connections.
        sqlx::Error::Database(error) if error.code().as_deref() == Some("53300") => true,
        error => crate::db::connection_lost(error),
    }
}

impl From<cachette::FetchTimedOut> for AppError {
    fn from(error: cachette::FetchTimedOut) -> Self {
        AppError::Unavailable(error.into())
    }
}

impl From<FieldError> for AppError {
    fn from(error: FieldError) -> Self {
        AppError::InvalidBody(error.to_string())
    }
}

impl From<crate::auth::HashingError> for AppError {
    fn from(error: crate::auth::HashingError) -> Self {
        match error {
            crate::auth::HashingError::Busy => AppError::Busy,
            crate::auth::HashingError::Failed(error) => AppError::Internal(error.into()),
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(error: serde_json::Error) -> Self {
        AppError::Internal(error.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        });
        let mut response = (status, body).into_response();
        if let Some(after) = self.retry_after() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(after));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_cannot_be_reached_is_a_503_and_a_failed_statement_a_500() {
        let status = |error: sqlx::Error| AppError::from(DbError::Sql(error)).status_code();
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(
            status(sqlx::Error::Io(reset)),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(sqlx::Error::PoolTimedOut),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(sqlx::Error::WorkerCrashed),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(sqlx::Error::ColumnNotFound("name".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_503_says_when_to_try_again() {
        let response = AppError::Unavailable(anyhow::anyhow!("down")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }
}
