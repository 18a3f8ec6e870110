//! The builder of the route table: `axum`'s `Router::route` and method routers, noting each (method, path)
//! pair they register, so a test can hold the router and the OpenAPI table (`openapi::ROUTES`) equal.

use crate::AppState;
use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;

/// A router under construction and the (method, path) pairs registered on it.
pub(super) struct Routes {
    pub(super) router: Router<AppState>,
    pub(super) pairs: Vec<(&'static str, &'static str)>,
}

impl Routes {
    pub(super) fn new() -> Routes {
        Routes {
            router: Router::new(),
            pairs: Vec::new(),
        }
    }

    /// `Router::route`.
    pub(super) fn route(mut self, path: &'static str, methods: Methods) -> Routes {
        self.pairs
            .extend(methods.names.iter().map(|method| (*method, path)));
        self.router = self.router.route(path, methods.router);
        self
    }
}

/// A method router and the methods it has.
pub(super) struct Methods {
    router: MethodRouter<AppState>,
    names: Vec<&'static str>,
}

macro_rules! methods {
    (first: $($first:ident),*; then: $($then:ident),*) => {
        $(
            #[doc = concat!("`axum::routing::", stringify!($first), "`.")]
            pub(super) fn $first<H, T>(handler: H) -> Methods
            where
                H: Handler<T, AppState>,
                T: 'static,
            {
                Methods {
                    router: axum::routing::$first(handler),
                    names: vec![stringify!($first)],
                }
            }
        )*

        impl Methods {
            $(
                #[doc = concat!("`MethodRouter::", stringify!($then), "`.")]
                pub(super) fn $then<H, T>(mut self, handler: H) -> Methods
                where
                    H: Handler<T, AppState>,
                    T: 'static,
                {
                    self.router = self.router.$then(handler);
                    self.names.push(stringify!($then));
                    self
                }
            )*
        }
    };
}

// `get` always comes first in the table; add it to `then` when a route needs it after another method
methods!(first: get, post, put, patch, delete; then: post, put, patch, delete);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// A path with every parameter name blanked: the router says `{id}` where the document names the kind of id.
    fn shape(path: &str) -> String {
        path.split('/')
            .map(|seg| {
                if seg.starts_with('{') && seg.ends_with('}') {
                    "{}"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn pairs<'a>(list: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
        list.map(|(m, p)| (m.to_string(), shape(p))).collect()
    }

    fn distinct(list: &[(String, String)], what: &str) -> BTreeSet<(String, String)> {
        let set: BTreeSet<_> = list.iter().cloned().collect();
        assert_eq!(
            set.len(),
            list.len(),
            "{what} lists a route twice: {list:?}"
        );
        set
    }

    /// Routes deliberately left out of the OpenAPI document, as (method, path).
    const UNDOCUMENTED: &[(&str, &str)] = &[];

    /// Routes whose parameter takes a few values that the document lists as paths of their own: (method, routed
    /// path, documented paths).
    const DOCUMENTED_BY_VALUE: &[(&str, &str, &[&str])] = &[(
        "post",
        "/export/{asset}",
        &[
            "/export/anomalies",
            "/export/checks",
            "/export/field-profiles",
            "/export/check-templates",
        ],
    )];

    /// The security suites (a token on every protected route, team isolation, the secret search) and the fuzzer
    /// walk the OpenAPI document: a route the router has and the document lacks would escape them all.
    #[test]
    fn the_router_has_exactly_the_documented_routes() {
        // the router's routes, each by-value route as the paths the document gives it
        let mut routed = Vec::new();
        for (method, path) in super::super::table().pairs {
            match DOCUMENTED_BY_VALUE
                .iter()
                .find(|(m, p, _)| *m == method && *p == path)
            {
                Some((_, _, values)) => routed.extend(values.iter().map(|v| (method, *v))),
                None => routed.push((method, path)),
            }
        }
        let routed = distinct(&pairs(routed.into_iter()), "the router");
        let documented = distinct(
            &pairs(crate::openapi::ROUTES.iter().map(|(m, p, _, _)| (*m, *p))),
            "the OpenAPI table",
        );
        let undocumented = distinct(&pairs(UNDOCUMENTED.iter().copied()), "UNDOCUMENTED");
        let missing: Vec<_> = routed
            .difference(&documented)
            .filter(|r| !undocumented.contains(*r))
            .collect();
        assert!(
            missing.is_empty(),
            "routed but not in openapi::ROUTES (document them, or list them in UNDOCUMENTED): {missing:?}"
        );
        let phantom: Vec<_> = documented.difference(&routed).collect();
        assert!(phantom.is_empty(), "documented but not routed: {phantom:?}");
        let stale: Vec<_> = undocumented
            .iter()
            .filter(|r| !routed.contains(*r) || documented.contains(*r))
            .collect();
        assert!(
            stale.is_empty(),
            "in UNDOCUMENTED but not routed, or documented after all: {stale:?}"
        );
        assert!(routed.len() >= 60, "{} routes", routed.len());
    }

    /// The served document has every route of the table, each with its method.
    #[test]
    fn the_document_has_every_route_of_the_table() {
        let doc = crate::openapi::document();
        let mut served = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let path = path.strip_prefix("/api").expect("paths under /api");
            for method in item.as_object().unwrap().keys() {
                served.push((method.clone(), path.to_string()));
            }
        }
        served.sort();
        let mut table: Vec<(String, String)> = crate::openapi::ROUTES
            .iter()
            .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
            .collect();
        table.sort();
        assert_eq!(served, table);
    }
}
