//! uring-server: a thread-per-core HTTP/1.1 server on io_uring.
//!
//! ```no_run
//! use uring_server::{Server, TierChoice};
//! let server = Server::builder()
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .workers(1)
//!     .pin(false)
//!     .tier(TierChoice::Auto)
//!     .start()
//!     .expect("start");
//! println!("listening on {:?}", server.local_addrs());
//! server.shutdown();
//! ```
//!
//! - [`server`]: the builder, the running server, start-up errors.
//! - [`config`]: the configuration types (re-exported by `server`).
//! - [`handler`]: the per-core handler API and the default endpoints; [`request`] and
//!   [`response`] hold the types a handler reads and writes.
//! - [`exchange`]: what every protocol hands the routes (a request, a response writer)
//!   and gets back.
//! - [`conn`]: one connection's sans-IO HTTP/1.1 state machine.
//! - [`worker`]: the ring loop of one worker thread.
//! - [`static_files`]: `--root` file serving.
//! - [`access_log`], [`metrics`], [`observe`]: the access log, Prometheus metrics, and the
//!   per-worker recorder that feeds both.
//! - [`inherit`], [`systemd`], [`upgrade`]: socket activation, sd_notify, and the
//!   zero-downtime upgrade (SIGUSR2).
//! - [`proxy`]: `--proxy` reverse proxying to upstream app servers (docs/proxy.md).

pub mod access_log;
pub mod compress;
pub mod config;
pub mod conn;
pub mod exchange;
pub mod handler;
pub mod inherit;
pub mod ktls;
pub mod limit;
mod listener;
pub mod metrics;
pub mod observe;
pub mod proxy;
pub mod request;
pub mod response;
pub mod server;
pub mod static_files;
pub mod systemd;
pub mod tls;
pub mod upgrade;
pub mod worker;

pub use handler::{CachedResponse, DefaultHandler, FileBody, Handler, Request, ResponseWriter};
pub use server::{
    AccessLogFormat, AccessLogTarget, FastcgiScript, Listening, ProxyConfig, RunningServer, Server,
    ServerBuilder, ServerConfig, ServerError, Timeouts, TlsSettings, UpstreamAddr,
    UpstreamProtocol,
};
pub use static_files::{FileBodies, StaticFiles};
pub use uring_common::http::Limits;
pub use uring_common::ring::{Tier, TierChoice};
