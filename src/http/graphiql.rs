//! GraphiQL for a browser's `GET /graphql`, served entirely by the service: a pinned GraphiQL
//! and React, vendored under `assets/graphiql/` (versions and how to refresh them in its
//! README), embedded in the binary and served under `/graphiql/` with long-lived cache headers.
//! The page's Content-Security-Policy allows nothing but this origin, so it never reaches out.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the assets are served.
pub const PREFIX: &str = "/graphiql";

/// The assets: (file name, content type, bytes). Names carry the version, so a refresh changes
/// the URL and the browser's cache never serves an old copy.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql-3.8.3.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql-3.8.3.min.js"),
    ),
    (
        "graphiql-3.8.3.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql-3.8.3.min.css"),
    ),
    (
        "react-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
    ),
    // Ours: its number goes up with every change, as the others' versions do.
    (
        "start-2.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/start.js"),
    ),
];

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wechat-identity GraphiQL</title>
<style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
<link rel="stylesheet" href="/graphiql/graphiql-3.8.3.min.css">
</head>
<body>
<div id="graphiql">Loading…</div>
<script src="/graphiql/react-18.3.1.production.min.js"></script>
<script src="/graphiql/react-dom-18.3.1.production.min.js"></script>
<script src="/graphiql/graphiql-3.8.3.min.js"></script>
<script src="/graphiql/start-2.js"></script>
</body>
</html>
"#;

/// Only this origin; inline styles (GraphiQL sets them) and the fonts GraphiQL's CSS embeds.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   font-src 'self' data:; img-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The GraphiQL page.
pub fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /graphiql/{file}`: one of the assets, or 404.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such GraphiQL asset\n").into_response(),
    }
}
