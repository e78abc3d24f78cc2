//! Every route of the API, in one list: the router is built from it and the OpenAPI document
//! (`docs/openapi.json`) is checked against it, so neither can gain or lose a route alone.

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// The lowercase name, as OpenAPI writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
        }
    }
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Dashboard,
    DashboardScript,
    DashboardStyle,
    VerifyScript,
    Health,
    Metrics,
    Status,
    Genesis,
    SubmitRequest,
    RequestOutcome,
    RequestReceipt,
    GatewayAccounts,
    GatewayTransfers,
    LookupAccounts,
    LookupTransfers,
    Account,
    Transfer,
    AccountTransfers,
    AccountBalances,
    QueryAccounts,
    QueryTransfers,
    Blocks,
    Header,
    RecentTransfers,
    Evidence,
    Backup,
}

impl Endpoint {
    /// Whether the endpoint submits requests to the chain (and may wait for their finality).
    pub fn is_write(self) -> bool {
        matches!(self, Self::SubmitRequest | Self::GatewayAccounts | Self::GatewayTransfers)
    }
}

/// One route: a method, a path (with `{name}` parameters, as both axum and OpenAPI write them)
/// and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub endpoint: Endpoint,
}

const fn route(method: Method, path: &'static str, endpoint: Endpoint) -> Route {
    Route { method, path, endpoint }
}

/// Every route the API serves.
pub const ROUTES: &[Route] = &[
    route(Method::Get, "/", Endpoint::Dashboard),
    route(Method::Get, "/dashboard.js", Endpoint::DashboardScript),
    route(Method::Get, "/dashboard.css", Endpoint::DashboardStyle),
    route(Method::Get, "/verify.js", Endpoint::VerifyScript),
    route(Method::Get, "/healthz", Endpoint::Health),
    route(Method::Get, "/metrics", Endpoint::Metrics),
    route(Method::Get, "/v1/status", Endpoint::Status),
    route(Method::Get, "/v1/genesis", Endpoint::Genesis),
    route(Method::Post, "/v1/requests", Endpoint::SubmitRequest),
    route(Method::Get, "/v1/requests/{client}/{id}", Endpoint::RequestOutcome),
    route(Method::Get, "/v1/requests/{client}/{id}/receipt", Endpoint::RequestReceipt),
    route(Method::Post, "/v1/accounts", Endpoint::GatewayAccounts),
    route(Method::Post, "/v1/transfers", Endpoint::GatewayTransfers),
    route(Method::Post, "/v1/accounts/lookup", Endpoint::LookupAccounts),
    route(Method::Post, "/v1/transfers/lookup", Endpoint::LookupTransfers),
    route(Method::Get, "/v1/accounts/{id}", Endpoint::Account),
    route(Method::Get, "/v1/transfers/{id}", Endpoint::Transfer),
    route(Method::Post, "/v1/accounts/transfers", Endpoint::AccountTransfers),
    route(Method::Post, "/v1/accounts/balances", Endpoint::AccountBalances),
    route(Method::Post, "/v1/accounts/query", Endpoint::QueryAccounts),
    route(Method::Post, "/v1/transfers/query", Endpoint::QueryTransfers),
    route(Method::Get, "/v1/blocks", Endpoint::Blocks),
    route(Method::Get, "/v1/headers/{height}", Endpoint::Header),
    route(Method::Get, "/v1/transfers/recent", Endpoint::RecentTransfers),
    route(Method::Get, "/v1/evidence", Endpoint::Evidence),
    route(Method::Get, "/v1/backup", Endpoint::Backup),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_and_path_appears_once() {
        for (index, route) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[index + 1..].iter().all(|other| (other.method, other.path) != (route.method, route.path)),
                "{route:?} is listed twice"
            );
        }
    }
}
