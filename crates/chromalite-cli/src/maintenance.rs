//! `doctor`, `repair` and `cleanup`: the session layer's checks and fixes on a persist directory.
//! They run before the store is opened, because a damaged store may not open.

use std::path::Path;
use std::sync::Arc;

use chromalite::VectorBackend;
use chromalite_session::repair::{plan_repair, repair as run_repair, RepairAction};
use chromalite_session::{store, validate_database_integrity, CleanupService, IntegrityReport, Severity};

use crate::args::{Cli, Command, Target};
use crate::{CliError, CliResult};

/// Runs a maintenance command on `--path DIR` (or `doctor` on `--lance DIR`).
pub fn run(cmd: &Command, cli: &Cli) -> CliResult {
    #[cfg(feature = "lance")]
    if let (Some(Target::Lance(dir)), Command::Doctor { json }) = (&cli.target, cmd) {
        return lance_doctor(dir, *json);
    }
    let Some(Target::Path(dir)) = &cli.target else {
        return Err(CliError::Usage(
            "repair and cleanup work on a persist directory (use --path DIR); doctor on --path DIR or --lance DIR"
                .into(),
        ));
    };
    if !dir.is_dir() {
        return Err(CliError::Usage(format!("{} is not a directory", dir.display())));
    }
    match cmd {
        Command::Doctor { json } => doctor(dir, *json),
        Command::Repair { yes } => repair(dir, *yes),
        Command::Cleanup { yes } => cleanup(dir, *yes),
        _ => Ok(()),
    }
}

fn open(p: &Path) -> chromalite::Result<Arc<dyn VectorBackend>> {
    Ok(Arc::new(chromalite_sqlite::SqliteBackend::open(p)?) as Arc<dyn VectorBackend>)
}

fn print_report(r: &IntegrityReport) {
    println!(
        "store {}: {} collection(s), SQLite {}",
        r.path.display(),
        r.collections.len(),
        if r.sqlite_ok { "ok" } else { "DAMAGED" }
    );
    for c in &r.collections {
        let vectors = c.vectors.map_or_else(|| "not loaded".to_owned(), |v| v.to_string());
        println!(
            "  {}/{}/{}: {} records, {} vectors in segment {}",
            c.db.tenant, c.db.database, c.name, c.records, vectors, c.vector_segment
        );
    }
    if let Some(pid) = r.lock_holder {
        println!("  in use by process {pid}");
    }
    for f in &r.findings {
        let tag = if f.severity == Severity::Damage { "DAMAGED" } else { "notice " };
        println!("{tag} {}: {}: {}", f.file, f.check, f.detail);
    }
}

fn print_next(r: &IntegrityReport) {
    if !r.next_steps.is_empty() {
        println!("next:");
        for s in &r.next_steps {
            println!("  {s}");
        }
    }
}

fn doctor(dir: &Path, json: bool) -> CliResult {
    let report = validate_database_integrity(dir);
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| CliError::Usage(e.to_string()))?);
    } else {
        print_report(&report);
        print_next(&report);
        if report.is_ok() {
            println!("ok");
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        let files: Vec<&str> = report.damage().map(|f| f.file.as_str()).collect();
        Err(CliError::Damaged(format!(
            "store is damaged ({}); run `chromalite --path {} repair --yes`",
            files.join(", "),
            dir.display()
        )))
    }
}

fn describe(a: &RepairAction) -> String {
    match a {
        RepairAction::RebuildSegment { collection, segment } => {
            format!("rebuild the HNSW segment {segment} of {collection:?} from the records in SQLite")
        }
        RepairAction::RestoreSqlite { recovery_point: Some(p), journal_entries } => {
            format!(
                "restore chroma.sqlite3 from the recovery point {} and replay {journal_entries} journaled write(s)",
                p.display()
            )
        }
        RepairAction::RestoreSqlite { recovery_point: None, journal_entries } => {
            format!("recreate chroma.sqlite3 by replaying the {journal_entries} journaled write(s) it was built from")
        }
    }
}

fn repair(dir: &Path, yes: bool) -> CliResult {
    let plan = plan_repair(dir);
    if let Some(reason) = &plan.unrepairable {
        print_report(&plan.report);
        return Err(CliError::Damaged(reason.clone()));
    }
    if plan.actions.is_empty() {
        println!("nothing to repair: {} is healthy", dir.display());
        return Ok(());
    }
    if !yes {
        println!("repair would:");
        println!("  1. copy the whole store to {}.backup-<UTC time>", dir.display());
        for (i, a) in plan.actions.iter().enumerate() {
            println!("  {}. {}", i + 2, describe(a));
        }
        println!("  {}. reopen the store and check it again", plan.actions.len() + 2);
        println!("run `chromalite --path {} repair --yes` to do it", dir.display());
        return Ok(());
    }
    let outcome = run_repair(dir, &open).map_err(|e| match e {
        chromalite_session::SessionError::Store(e) => CliError::Store(e),
        other => CliError::Damaged(other.to_string()),
    })?;
    if let Some(b) = &outcome.backup {
        println!("backup: {}", b.display());
    }
    for a in &outcome.actions {
        println!("done: {}", describe(a));
    }
    if outcome.after.is_ok() {
        println!("the store checks out ({:.1} s)", outcome.duration.as_secs_f64());
        Ok(())
    } else {
        print_report(&outcome.after);
        Err(CliError::Damaged("still damaged after repair; the backup holds the original files".into()))
    }
}

fn cleanup(dir: &Path, yes: bool) -> CliResult {
    if let store::LockState::Held { pid } = store::lock_state(dir) {
        return Err(CliError::Store(chromalite::Error::Locked { path: dir.display().to_string(), pid }));
    }
    let result = CleanupService::new(dir).cleanup_orphaned_files(!yes);
    let verb = if yes { "removed" } else { "would remove" };
    for f in &result.files_removed {
        println!("{verb} {}", f.display());
    }
    println!(
        "{verb} {} committed log entr{}",
        result.log_entries_purged,
        if result.log_entries_purged == 1 { "y" } else { "ies" }
    );
    for e in &result.errors_encountered {
        eprintln!("chromalite: {e}");
    }
    if !yes {
        println!("dry run: nothing was changed; run `chromalite --path {} cleanup --yes` to do it", dir.display());
    }
    if result.errors_encountered.is_empty() {
        Ok(())
    } else {
        Err(CliError::Usage(format!("cleanup met {} error(s)", result.errors_encountered.len())))
    }
}

/// `doctor` on a Lance store: opens it read-only (beside a writer), reads every table, and reports
/// collections, leftovers and damage (exit 2 when damaged).
#[cfg(feature = "lance")]
fn lance_doctor(dir: &Path, json: bool) -> CliResult {
    let report = chromalite::lance::LanceBackend::check(dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| CliError::Usage(e.to_string()))?);
    } else {
        println!("lance store {}: {} collection(s)", report.path.display(), report.collections.len());
        for c in &report.collections {
            let records = c.records.map_or_else(|| "unreadable".to_owned(), |n| format!("{n} records"));
            let versions = c.versions.map_or_else(String::new, |v| format!(", {v} table version(s) on disk"));
            println!("  {}/{}/{}: {records}{versions}", c.tenant, c.database, c.name);
        }
        if let Some(pid) = report.lock_holder {
            println!("  in use by process {pid}");
        }
        for t in &report.unreferenced_tables {
            println!(
                "notice  {}: table folder no collection references (removed when a writer opens the store)",
                t.display()
            );
        }
        for f in &report.damage {
            println!("DAMAGED {}: {}", f.file, f.detail);
        }
        if report.is_ok() {
            println!("ok");
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        let files: Vec<&str> = report.damage.iter().map(|f| f.file.as_str()).collect();
        Err(CliError::Damaged(format!("lance store is damaged ({})", files.join(", "))))
    }
}
