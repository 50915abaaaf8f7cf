//! Every request answers before the function's deadline.
//!
//! On Lambda the deadline is the invocation's (`lambda_http` passes its
//! `Context`); locally it is the configured request budget
//! (`REQUEST_TIMEOUT_MS`, 10 s by default, the deployer's default `timeout_s`).
//! The layer makes it the task's [`Deadline`]: the store derives every
//! DynamoDB call's operation and attempt timeouts from what is left
//! (`store::Store::client`), and stops retrying conflicts when it runs short,
//! so a slow DynamoDB becomes the store's 503 in time. The layer itself is the
//! backstop: a handler still running [`ANSWER_MARGIN`]`/2` before the deadline
//! is dropped, and the answer is 503 with `Retry-After`, never API Gateway's
//! own non-JSON error after Lambda ends the function.

use std::time::{Duration, Instant, SystemTime};

pub use crate::deadline::{ANSWER_MARGIN, Deadline};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::RequestExt;

use super::error_response;

/// A request's budget when no Lambda deadline applies (locally).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What a 503 asks a client to wait before retrying, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The local request budget, as the layer's state.
#[derive(Debug, Clone, Copy)]
pub struct Budget(pub Duration);

/// The deadline of `request`: its Lambda invocation's, else now + `budget`.
fn deadline_of(request: &Request, budget: Duration) -> Deadline {
    let now = Instant::now();
    let lambda = request.lambda_context_ref().map(|context| {
        let left = context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        now + left
    });
    Deadline(lambda.unwrap_or(now + budget))
}

/// The 503 of a request that ran out of time.
pub fn out_of_time() -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "The request ran out of time; retry",
    );
    retry_after(&mut response);
    response
}

/// Ask the client to retry after [`RETRY_AFTER_SECONDS`].
pub fn retry_after(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
}

/// The layer: run the request under its deadline.
pub async fn enforce(
    axum::extract::State(budget): axum::extract::State<Budget>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = deadline_of(&request, budget.0);
    let backstop = deadline
        .0
        .checked_sub(ANSWER_MARGIN / 2)
        .unwrap_or(deadline.0);
    let run = deadline.scope(next.run(request));
    match tokio::time::timeout_at(backstop.into(), run).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("a request ran out of time before DynamoDB answered");
            out_of_time()
        }
    }
}
