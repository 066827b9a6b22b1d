//! redial: a callback scheduler for contact centers.
//!
//! Agents end a call with a business outcome and, often, a personal callback ("call this
//! customer back, me, between 13:45 and 14:30 on Friday"). redial takes those requests in
//! Acqueon LCM's `SetBusinessOutcomeWithPersonalCallback` form, stores them durably in SQLite
//! and keeps everything queryable with plain SQL.
//!
//! # Layout
//!
//! - [`config`]: flags and environment, checked once; [`policy`]: the rules they set;
//!   [`catalogue`]: the outcome catalogue they may load.
//! - [`clock`]: where "now" comes from (the system clock, or one a test sets).
//! - [`zone`]: local times and UTC instants under a zone's daylight-saving rules;
//!   [`hours`]: calling hours in a contact's zone.
//! - [`lcm`]: the envelope, the request and its field rules, the callback window.
//! - [`service`]: one method per operation, called by every edge; the rules live here.
//! - [`lifecycle`]: the callback state machine: its states and its decisions, without SQL.
//! - [`store`]: the schema, the single writer that commits in groups, the read connections,
//!   and every SQL statement.
//! - [`scheduler`]: the due-window worker and the retention purge.
//! - [`signals`]: how commits wake the scheduler and long-polling dialers.
//! - [`http`]: the routes, thin, and the connections they are served on.
//! - [`bus`]: pushes to desktops and supervisor screens, from the outbox to the sockets.
//! - [`relay`]: the bus's events published to NATS JetStream (`--nats`).
//! - [`dialer`]: the reference dialer, a working client of the queue (over HTTP or NATS).
//! - [`report`]: `redial report`, the callback SLA and other reports, read-only over the views.
//! - [`telemetry`]: the Prometheus metrics, recorded where things happen, read at scrape.
//! - [`logs`]: where log lines go and how JSON lines are written.
//! - [`memory`]: how the process takes memory from the kernel (no transparent huge pages).

pub mod bus;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod dialer;
pub mod hours;
pub mod http;
pub mod lcm;
pub mod lifecycle;
pub mod logs;
pub mod memory;
pub mod policy;
pub mod relay;
pub mod report;
pub mod scheduler;
pub mod service;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod zone;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{std_duration, Config};
use crate::http::{App, AppState};
use crate::service::Service;
use crate::store::Store;

/// Runs the service on `listener` until `shutdown` completes: then it stops accepting, lets
/// in-flight requests finish (long-polls return at once), stops the scheduler, commits
/// everything the writer holds, and returns.
pub async fn serve(
    config: Config,
    clock: Clock,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let tokens = match &config.tokens {
        Some(path) => Some(Arc::new(
            http::auth::Tokens::load(path).map_err(anyhow::Error::msg)?,
        )),
        None if address.ip().is_loopback() || config.insecure_no_auth => None,
        None => anyhow::bail!(
            "refusing to serve {address} without --tokens: anyone who can reach it could set \
             outcomes and read the queue; give --tokens FILE, or --insecure-no-auth to accept that"
        ),
    };
    let relay_config = config.relay().map_err(anyhow::Error::msg)?;
    if let Some(relay) = &relay_config {
        // A stream that exists with settings the relay cannot publish to stops the start.
        relay::check_at_start(relay).await?;
    }
    // Read before anything starts, so that a bad file stops nothing half begun.
    let entries = config
        .outcomes
        .as_deref()
        .map(catalogue::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (store, writer) = Store::open(&config.store_options())
        .with_context(|| format!("cannot start on {}", config.db.display()))?;
    tracing::info!(
        %address,
        db = %config.db.display(),
        timezone = %config.timezone,
        "redial serving"
    );

    if config.metrics {
        telemetry::install(config.metrics_per_agent);
    }
    let stop = CancellationToken::new();
    let mut service = Service::new(store, clock, config.policy(), stop.clone());
    let outcomes = service
        .load_catalogue(entries)
        .await
        .context("cannot load the outcome catalogue")?;
    if outcomes > 0 {
        tracing::info!(outcomes, "outcome catalogue loaded");
    }
    let workers = TaskTracker::new();
    workers.spawn(service.scheduler().run(stop.clone()));
    workers.spawn(
        service
            .housekeeping(config.purge_cron.clone(), config.retention)
            .run(),
    );
    let bus = bus::Bus::start(
        service.store().clone(),
        service.clock().clone(),
        config.bus_queue as usize,
    )
    .await
    .context("cannot start the bus")?;
    workers.spawn(Arc::clone(&bus).run(stop.clone()));
    let relay = relay_config.map(|config| {
        let status = Arc::new(relay::Status::default());
        workers.spawn(
            relay::Relay {
                store: service.store().clone(),
                bus: Arc::clone(&bus),
                clock: service.clock().clone(),
                config,
                status: Arc::clone(&status),
            }
            .run(stop.clone()),
        );
        status
    });
    let sockets = http::bus::Sockets {
        bus,
        permits: Arc::new(tokio::sync::Semaphore::new(config.max_bus_clients as usize)),
        max: config.max_bus_clients as usize,
        ping: std_duration(config.bus_ping),
        tasks: TaskTracker::new(),
        closing: CancellationToken::new(),
    };
    let (socket_tasks, closing) = (sockets.tasks.clone(), sockets.closing.clone());
    let router = http::router(AppState::new(App {
        service,
        timeout: std_duration(config.request_timeout),
        body_timeout: std_duration(config.body_timeout),
        tokens,
        sockets,
        relay,
    }));
    let stopping = stop.clone();
    http::server::serve(listener, router, config.connection_limits(), async move {
        shutdown.await;
        stopping.cancel();
        closing.cancel();
    })
    .await;
    // Bus sockets answer the requests they hold and close (1001) while the writer still runs.
    socket_tasks.close();
    socket_tasks.wait().await;
    stop.cancel();
    workers.close();
    workers.wait().await;
    tokio::task::spawn_blocking(move || writer.stop()).await?;
    tracing::info!("redial stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives while the service is still starting
/// (after it announced its address) then stops it cleanly instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut term, mut interrupt) = term;
            let next = |s: &mut Option<tokio::signal::unix::Signal>| {
                let mut s = s.take();
                async move {
                    match s.as_mut() {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                }
            };
            tokio::select! {
                _ = next(&mut term) => {}
                _ = next(&mut interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}
