//! `chromalite`: the command-line face of chromalite. See `chromalite help` and DESIGN.md's CLI
//! contract (scripts depend on its output and exit codes).

/// `println!` that reports a failed write (a closed pipe, a full disk) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err($crate::CliError::from)?;
    }};
}

mod args;
mod bench;
mod demo;
mod embed;
mod import;
mod maintenance;
mod migrate;
mod records;
mod show;
mod store;

use std::process::ExitCode;

use args::Command;
use chromalite::ErrorKind;

/// Why a command failed, which decides the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or input files: exit 1.
    Usage(String),
    /// The store refused or failed: exit code from the error kind.
    Store(chromalite::Error),
    /// `doctor` found damage: exit 2.
    Damaged(String),
    /// A failure with what it left behind (e.g. how much of an import was committed).
    Context(Box<CliError>, String),
    /// stdout was closed by the reader (e.g. `| head`): stop quietly, exit 0.
    ClosedOutput,
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::ClosedOutput
        } else {
            CliError::Usage(format!("cannot write output: {e}"))
        }
    }
}

impl From<chromalite::Error> for CliError {
    fn from(e: chromalite::Error) -> Self {
        CliError::Store(e)
    }
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::ClosedOutput => 0,
            CliError::Usage(_) => 1,
            CliError::Damaged(_) => 2,
            CliError::Context(e, _) => e.exit_code(),
            CliError::Store(e) => match e.kind() {
                ErrorKind::Corrupt => 2,
                ErrorKind::Locked | ErrorKind::Unavailable | ErrorKind::Timeout => 3,
                _ => 1,
            },
        }
    }

    fn message(&self) -> String {
        match self {
            CliError::Usage(m) | CliError::Damaged(m) => m.clone(),
            CliError::ClosedOutput => String::new(),
            CliError::Context(e, what) => format!("{}; {what}", e.message()),
            CliError::Store(e) => format!("{} ({})", e, e.kind()),
        }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

fn main() -> ExitCode {
    let cli = match args::parse() {
        Ok(cli) => cli,
        Err(msg) => {
            eprintln!("chromalite: {msg}");
            return ExitCode::from(1);
        }
    };
    match run(cli) {
        Ok(()) | Err(CliError::ClosedOutput) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chromalite: {}", e.message().replace('\n', " "));
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: args::Cli) -> CliResult {
    if matches!(cli.command, Command::Help) {
        outln!("{}", args::USAGE);
        return Ok(());
    }
    match &cli.command {
        Command::Demo { dir } => return demo::run(dir.as_deref()),
        Command::Bench(opts) => return bench::run(opts),
        Command::BenchWorker { system, data, store, open_only } => {
            let url = match &cli.target {
                Some(args::Target::Url { url, .. }) => Some(url.as_str()),
                _ => None,
            };
            return bench::worker(system, data, store, url, *open_only);
        }
        Command::Migrate { from, to, collections, batch_size } => {
            return migrate::run(&cli, from, to, collections, *batch_size)
        }
        // Before opening: a damaged store may not open.
        Command::Doctor { .. } | Command::Repair { .. } | Command::Cleanup { .. } => {
            return maintenance::run(&cli.command, &cli)
        }
        _ => {}
    }
    let client = store::open(&cli)?;
    match cli.command {
        Command::Collections { json } => show::collections(&client, json),
        Command::Create { name, space, metadata, embed } => {
            records::create(&client, &name, space.as_deref(), metadata.as_deref(), &embed)
        }
        Command::Import { name, file, batch_size, space, embed } => {
            import::run(&client, &name, &file, batch_size, space.as_deref(), &embed)
        }
        Command::Export { name, file } => records::export(&client, &name, file.as_deref()),
        Command::Count { name } => {
            outln!("{}", client.get_collection(&name)?.count()?);
            Ok(())
        }
        Command::Get { name, limit, offset, read } => show::get(&client, &name, limit, offset, &read),
        Command::Query { name, embeddings, n_results, read, embed } => {
            show::query(&client, &name, embeddings.as_deref(), n_results, &read, &embed)
        }
        Command::Delete { name, limit, read } => records::delete(&client, &name, limit, &read),
        Command::Doctor { .. }
        | Command::Repair { .. }
        | Command::Cleanup { .. }
        | Command::Help
        | Command::Demo { .. }
        | Command::Bench(_)
        | Command::BenchWorker { .. }
        | Command::Migrate { .. } => Ok(()),
    }
}
