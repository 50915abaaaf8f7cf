//! The API's routes, as API Gateway registers them and the router serves them.

/// One route of the API, as API Gateway must register it (`METHOD /path/{param}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

impl Route {
    /// The API Gateway route key, for example `GET /tables/{tableId}`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const fn route(method: &'static str, path: &'static str) -> Route {
    Route { method, path }
}

/// The route by which an app fetches a stored sign-in session: open even where
/// sign-in is required (the session id is the capability), so API Gateway
/// throttles it on its own, to keep guessing ids slow.
pub const READ_SESSION_ROUTE: Route = route("GET", "/sessions/{sessionId}");

/// Every route the function's router serves (CORS preflights are API
/// Gateway's: see [`crate::cors`]). The deployer registers exactly these, plus
/// API Gateway's `$default` route to the same function, so that unknown paths
/// and methods reach the router too and get its JSON 404 and 405; a test checks
/// the router against this list.
pub const ROUTES: &[Route] = &[
    route("POST", "/tables"),
    route("GET", "/tables"),
    route("GET", "/tables/{tableId}"),
    route("PATCH", "/tables/{tableId}"),
    route("DELETE", "/tables/{tableId}"),
    route("GET", "/tables/{tableId}/users"),
    route("GET", "/tables/{tableId}/teams"),
    route("GET", "/tables/{tableId}/users/{username}"),
    route("PUT", "/tables/{tableId}/users/{username}"),
    route("PUT", "/tables/{tableId}/users/{username}/moral-compass"),
    route("PUT", "/tables/{tableId}/users/{username}/moralcompass"),
    route("PATCH", "/tables/{tableId}/users/{username}/tasks"),
    route("DELETE", "/tables/{tableId}/users/{username}/tasks"),
    route("POST", "/sessions"),
    route("GET", "/sessions/{sessionId}"),
    route("PATCH", "/sessions/{sessionId}"),
    route("GET", "/health"),
    route("GET", "/openapi.json"),
];
