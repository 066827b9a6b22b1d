use anyhow::Context;
use clap::Parser;
use redial::clock::Clock;
use redial::config::{Cli, Command};

/// mimalloc instead of glibc's allocator: a request allocates and frees dozens of small blocks
/// (JSON values, header maps, strings) on whichever worker thread runs it, and glibc's free
/// lists were a large share of the HTTP workers' time (BENCHMARKS.md: mimalloc). It asks the
/// kernel for huge pages, which `run` turns off ([`redial::memory`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the command; a failure is one line on stderr (`redial: what went wrong: why`) and exit
/// status 1, so a service manager's log says at a glance why redial did not start.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(config) = &cli.command {
        runtime.worker_threads(config.http_threads.into());
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("redial: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redial: {}", format!("{e:#}").replace('\n', " "));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let _flush_logs = redial::logs::init(cli.log_format);
    if !redial::memory::turn_off_huge_pages() {
        tracing::debug!("transparent huge pages could not be turned off");
    }
    match cli.command {
        Command::Serve(config) => {
            let listener = redial::http::server::listen(config.listen)
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            redial::serve(
                *config,
                Clock::system(),
                listener,
                redial::shutdown_signal(),
            )
            .await
        }
        Command::Dialer(args) => redial::dialer::run(args).await,
        Command::Bus(args) => redial::bus::client::run(args).await,
        Command::Report(args) => {
            tokio::task::spawn_blocking(move || {
                redial::report::run(&args, &Clock::system(), &mut std::io::stdout().lock())
            })
            .await?
        }
        Command::Backup(args) => {
            let (db, out) = (args.db.clone(), args.out.clone());
            let copied =
                tokio::task::spawn_blocking(move || redial::store::backup::backup(&db, &out))
                    .await?
                    .with_context(|| format!("backup of {} failed", args.db.display()))?;
            println!(
                "{}: {} pages, {} bytes, schema version {}, integrity ok",
                args.out.display(),
                copied.pages,
                copied.bytes,
                copied.schema_version
            );
            Ok(())
        }
    }
}
