//! Lambda mode: API Gateway HTTP API (payload v2) events into the router.
//!
//! API Gateway puts a named stage into `rawPath` (`/dev/tables/x`) and
//! `lambda_http` keeps it (its `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` does not
//! apply to HTTP API events), so [`strip_stage`] removes it before routing.

use axum::Router;
use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// Remove a named stage prefix from the request path; `$default` has none.
pub fn strip_stage(mut request: Request) -> Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|stage| !stage.is_empty() && stage != "$default") else {
        return request;
    };
    let uri = request.uri();
    let Some(rest) = uri
        .path()
        .strip_prefix('/')
        .and_then(|path| path.strip_prefix(stage.as_str()))
    else {
        return request;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return request;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(path_and_query) = path_and_query.parse::<PathAndQuery>() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(stripped) = Uri::from_parts(parts) {
            *request.uri_mut() = stripped;
        }
    }
    request
}

/// Serve `router` to the Lambda runtime until the sandbox is shut down.
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    let service = tower::ServiceBuilder::new()
        .map_request(strip_stage)
        .service(router);
    lambda_http::run(service).await
}
