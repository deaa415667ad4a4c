//! `chromalite migrate`: copies collections between two stores (a Chroma persist directory and a
//! Lance store, either way), with their metadata, configuration and every record.

use std::io::IsTerminal;

use chromalite::migrate::{copy_all, Progress};

use crate::args::{Cli, Target};
use crate::store;
use crate::CliResult;

/// Copies the collections of `--tenant`/`--database` (or the named ones) from `from` into `to`.
///
/// The source is opened for reading only when it is a persist directory, so a migration can run
/// beside a program that still writes to it (it copies what was committed when each page is read).
pub fn run(cli: &Cli, from: &Target, to: &Target, collections: &[String], batch_size: usize) -> CliResult {
    let src = store::scope(&store::open_target(from, true)?, cli);
    let dst = store::scope(&store::open_target(to, false)?, cli);
    let tty = std::io::stderr().is_terminal();
    let mut report = |p: Progress<'_>| {
        if tty {
            eprint!("\r{}: {}/{} records", p.collection, p.copied, p.total);
        } else {
            eprintln!("copied {} {}/{}", p.collection, p.copied, p.total);
        }
    };
    let copied = copy_all(&src, &dst, collections, batch_size, &mut report)?;
    if tty {
        eprintln!();
    }
    for (name, n) in &copied {
        outln!("migrated {name}: {n} records");
    }
    outln!("migrated {} collections", copied.len());
    Ok(())
}
