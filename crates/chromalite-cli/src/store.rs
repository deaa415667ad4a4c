//! Opening the store named on the command line.

use chromalite::Client;

use crate::args::{Cli, Command, Target};
use crate::{CliError, CliResult};

/// Whether a command only reads: those open a persist directory without the writer lock, so they
/// run beside a writer (an import in progress, a Python program) and never modify the directory.
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
    let client = match &cli.target {
        None => return Err(CliError::Usage("choose a store with --path DIR, --url URL or --memory".into())),
        Some(Target::Memory) => Client::in_memory(),
        Some(Target::Path(dir)) if read_only(&cli.command) => Client::persistent_read_only(dir)?,
        Some(Target::Path(dir)) => Client::persistent(dir)?,
        Some(Target::Url { url, token }) => {
            Client::remote_with(&chromalite::remote::RemoteOptions::new(url).maybe_token(token.as_deref()))?
        }
        Some(Target::Lance(_)) => {
            return Err(CliError::Usage("--lance: the LanceDB backend is not part of this build yet".into()))
        }
    };
    let tenant = cli.tenant.as_deref().unwrap_or(chromalite::core::DEFAULT_TENANT);
    let database = cli.database.as_deref().unwrap_or(chromalite::core::DEFAULT_DATABASE);
    Ok(client.scoped(tenant, database))
}
