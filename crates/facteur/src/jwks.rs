//! The OAuth issuer's public keys (RFC 7517 JWK Set) from `oauth.jwks_url`: fetched at start
//! and every hour after, so a key the issuer rotates in is known within the hour. A failed
//! fetch keeps the keys already loaded and is tried again in five minutes. HTTPS is required,
//! except to a loopback address (an identity provider on the same machine).

use anyhow::{Context as _, bail};
use facteur_directory::Directory;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use std::time::Duration;

const REFRESH: Duration = Duration::from_secs(3600);
const RETRY: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(15);
/// A JWK Set is a few kilobytes; more is not a key set.
const MAX_BODY: usize = 1024 * 1024;

/// Checks the URL now (so `serve` refuses a bad one at start).
pub fn check_url(url: &str) -> anyhow::Result<hyper::Uri> {
    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("key `oauth.jwks_url`: `{url}` is not a URL"))?;
    let host = uri.host().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if loopback => Ok(uri),
        _ => bail!(
            "key `oauth.jwks_url`: `{url}` must be an https:// URL (http:// only to a loopback address)"
        ),
    }
}

/// Fetches now and then every hour, for as long as the server runs.
pub async fn refresh(directory: Directory, uri: hyper::Uri) {
    loop {
        let wait = match fetch(&uri).await {
            Ok(body) => match directory.set_jwks(&body) {
                Ok(0) => {
                    tracing::warn!(url = %uri, "the issuer's key set holds no usable key; XOAUTH2 and OAUTHBEARER refuse every token");
                    RETRY
                }
                Ok(keys) => {
                    tracing::info!(url = %uri, keys, "OAuth issuer keys loaded");
                    REFRESH
                }
                Err(e) => {
                    tracing::error!(url = %uri, error = %e, "the issuer's key set is not a JWK Set; keeping the keys loaded before");
                    RETRY
                }
            },
            Err(e) => {
                tracing::error!(url = %uri, "cannot fetch the issuer's keys: {e:#}; keeping the keys loaded before, trying again in 5 minutes");
                RETRY
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn fetch(uri: &hyper::Uri) -> anyhow::Result<String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .context("loading the system's root certificates")?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<Bytes>>(https);
    let request = hyper::Request::get(uri.clone())
        .header("accept", "application/jwk-set+json, application/json")
        .header("user-agent", concat!("facteur/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new())?;
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .context("no answer within 15 s")??;
    if !response.status().is_success() {
        bail!("HTTP status {}", response.status());
    }
    let body = tokio::time::timeout(
        TIMEOUT,
        Limited::new(response.into_body(), MAX_BODY).collect(),
    )
    .await
    .context("body not received within 15 s")?
    .map_err(|e| anyhow::anyhow!("reading the body: {e}"))?;
    String::from_utf8(body.to_bytes().to_vec()).context("the body is not UTF-8")
}
