//! Opening the store named on the command line.

use chromalite::Client;

use crate::args::{Cli, Command, Target};
use crate::{CliError, CliResult};

/// Whether a command only reads: those open a persist directory (or a Lance store) without the
/// writer lock, so they run beside a writer (an import in progress, a Python program) and never
/// modify the store.
fn read_only(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Collections { .. }
            | Command::Export { .. }
            | Command::Count { .. }
            | Command::Get { .. }
            | Command::Query { .. }
    )
}

/// Opens the backend chosen by `--path`, `--url`, `--memory` or `--lance` and scopes it to
/// `--tenant` / `--database`.
pub fn open(cli: &Cli) -> CliResult<Client> {
    let Some(target) = &cli.target else {
        return Err(CliError::Usage("choose a store with --path DIR, --url URL, --memory or --lance DIR".into()));
    };
    let client = open_target(target, read_only(&cli.command))?;
    Ok(scope(&client, cli))
}

/// Scopes a client to `--tenant` / `--database` (defaults: Chroma's).
pub fn scope(client: &Client, cli: &Cli) -> Client {
    let tenant = cli.tenant.as_deref().unwrap_or(chromalite::core::DEFAULT_TENANT);
    let database = cli.database.as_deref().unwrap_or(chromalite::core::DEFAULT_DATABASE);
    client.scoped(tenant, database)
}

/// Opens one store; `read_only` opens a persist directory or a Lance store without the writer lock.
pub fn open_target(target: &Target, read_only: bool) -> CliResult<Client> {
    Ok(match target {
        Target::Memory => Client::in_memory(),
        Target::Path(dir) if read_only => Client::persistent_read_only(dir)?,
        Target::Path(dir) => Client::persistent(dir)?,
        Target::Url { url, token } => {
            Client::remote_with(&chromalite::remote::RemoteOptions::new(url).maybe_token(token.as_deref()))?
        }
        #[cfg(feature = "lance")]
        Target::Lance(dir) if read_only => {
            Client::lance_with(dir, chromalite::lance::LanceOptions { read_only: true, ..Default::default() })?
        }
        #[cfg(feature = "lance")]
        Target::Lance(dir) => Client::lance(dir)?,
        #[cfg(not(feature = "lance"))]
        Target::Lance(_) => {
            return Err(CliError::Usage(
                "--lance: this chromalite was built without the LanceDB backend; rebuild with `--features lance`"
                    .into(),
            ))
        }
    })
}
