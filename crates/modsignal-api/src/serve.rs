//! Running the server: bind, serve until told to stop, then finish the requests in flight.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::api::{ApiState, router};
use crate::config::ApiConfig;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Binds `config.address` and serves [`router`] until `shutdown` completes; then stops
/// accepting connections and returns once the requests in flight are answered.
pub async fn serve<F>(config: &ApiConfig, state: ApiState, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(|source| ServeError::Bind {
            address: config.address,
            source,
        })?;
    serve_listener(listener, state, shutdown).await
}

/// As [`serve`], on a listener the caller bound (to learn the port of `127.0.0.1:0`, say).
pub async fn serve_listener<F>(listener: TcpListener, state: ApiState, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "HTTP API and dashboard listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
