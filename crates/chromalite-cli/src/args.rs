//! Command-line parsing for the contract in DESIGN.md.

use std::path::PathBuf;

use lexopt::prelude::*;

use crate::embed::EmbedOpts;

/// Which store to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Path(PathBuf),
    Url { url: String, token: Option<String> },
    Memory,
    Lance(PathBuf),
}

/// The parsed command line.
#[derive(Debug)]
pub struct Cli {
    pub target: Option<Target>,
    pub tenant: Option<String>,
    pub database: Option<String>,
    pub command: Command,
}

/// Options shared by `get` and `query`.
#[derive(Debug, Default)]
pub struct ReadOpts {
    pub ids: Option<Vec<String>>,
    pub where_: Option<String>,
    pub where_document: Option<String>,
    pub include: Option<String>,
    pub json: bool,
}

/// Options of `bench`.
#[derive(Debug, Default)]
pub struct BenchOpts {
    pub data: Option<PathBuf>,
    pub limit: Option<usize>,
    pub scale: Option<usize>,
    pub queries: Option<usize>,
    pub systems: Option<String>,
    pub python: Option<PathBuf>,
    pub work_dir: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub svg: Option<PathBuf>,
}

/// One command.
#[derive(Debug)]
pub enum Command {
    Collections {
        json: bool,
    },
    Create {
        name: String,
        space: Option<String>,
        metadata: Option<String>,
        embed: EmbedOpts,
    },
    Import {
        name: String,
        file: PathBuf,
        batch_size: usize,
        space: Option<String>,
        embed: EmbedOpts,
    },
    Export {
        name: String,
        file: Option<PathBuf>,
    },
    Count {
        name: String,
    },
    Get {
        name: String,
        limit: Option<usize>,
        offset: Option<usize>,
        read: ReadOpts,
    },
    /// `embeddings` or `embed.texts` (`--text`), not both.
    Query {
        name: String,
        embeddings: Option<PathBuf>,
        n_results: usize,
        read: ReadOpts,
        embed: EmbedOpts,
    },
    Delete {
        name: String,
        /// chromadb's delete `limit` (only with `--where` / `--where-document`).
        limit: Option<u32>,
        read: ReadOpts,
    },
    Doctor {
        json: bool,
    },
    Repair {
        yes: bool,
    },
    Cleanup {
        yes: bool,
    },
    Demo {
        dir: Option<PathBuf>,
    },
    Bench(BenchOpts),
    /// Copies collections between two stores (`--from`/`--from-lance` to `--to`/`--to-lance`).
    Migrate {
        from: Target,
        to: Target,
        collections: Vec<String>,
        batch_size: usize,
    },
    BenchWorker {
        system: String,
        data: PathBuf,
        store: PathBuf,
        open_only: bool,
    },
    Help,
}

pub const USAGE: &str = "\
usage: chromalite [--path DIR | --url URL [--token T] | --memory | --lance DIR] [--tenant T] [--database D] COMMAND

commands:
  collections [--json]                         list collections
  create NAME [--space l2|ip|cosine] [--metadata JSON] [--embedding-function default|none]
  import NAME --file records.jsonl [--batch-size N] [--space S] [--embedding-function F] [--model-dir DIR]
                                               one {\"id\",\"embedding\",\"document\"?,\"metadata\"?} per line;
                                               \"embedding\" may be left out when the collection has an
                                               embedding function (the document is embedded)
  export NAME [--file out.jsonl]               all records as JSONL (stdout by default)
  count NAME                                   number of records
  get NAME [--ids a,b] [--where JSON] [--where-document JSON] [--limit N] [--offset N] [--include LIST] [--json]
  query NAME --embeddings FILE.json [--n-results K] [--where JSON] [--where-document JSON] [--include LIST] [--json]
  query NAME --text \"...\" [--text ...] [--model-dir DIR] [--embedding-function default] [other query options]
                                               texts embedded by the collection's embedding function
  delete NAME [--ids a,b] [--where JSON] [--where-document JSON] [--limit N]
                                               prints chromadb's count: every id given, or
                                               the records a filter matched (the first N)
  doctor [--json]                              check a store (--path or --lance); exit 2 when damaged
  repair [--yes]                               back up, then rebuild damaged parts
  cleanup [--dry-run | --yes]                  remove orphaned segments and stale files
  migrate (--from DIR | --from-lance DIR) (--to DIR | --to-lance DIR) [--collection NAME]... [--batch-size N]
                                               copy collections (all of --tenant/--database, or the named
                                               ones) with metadata, configuration and every record;
                                               the target collections must not exist yet
  demo [--dir DIR]                             build ./chromalite-data from the bundled corpus and query it
  bench [--data DIR] [--limit N] [--scale N] [--queries N] [--systems persistent,memory,remote,chroma]
        [--python PATH] [--work-dir DIR] [--json FILE] [--svg FILE]
                                               the same workload on every system, with ratios

embedding function \"default\" = all-MiniLM-L6-v2 (as chromadb's); model files from --model-dir,
CHROMALITE_MODEL_DIR or the Hugging Face cache

exit codes: 0 ok, 1 user error, 2 store damaged, 3 store unavailable or locked";

/// Parses `std::env::args`.
pub fn parse() -> Result<Cli, String> {
    parse_from(std::env::args_os().skip(1))
}

/// Parses an argument list (without the program name).
pub fn parse_from<I>(args: I) -> Result<Cli, String>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    let mut p = lexopt::Parser::from_args(args);
    let mut target = None;
    let (mut tenant, mut database, mut token, mut url) = (None, None, None, None);
    // DESIGN's `--path DIR | --url URL | --memory | --lance DIR`: one store, not the last of several.
    let mut stores: Vec<String> = Vec::new();
    let command = loop {
        let arg = p.next().map_err(|e| e.to_string())?.ok_or("missing command; run `chromalite help`")?;
        if let Long(flag @ ("path" | "lance" | "memory" | "url")) = arg {
            stores.push(flag.to_owned());
        }
        match arg {
            Long("path") => target = Some(Target::Path(value(&mut p)?.into())),
            Long("lance") => target = Some(Target::Lance(value(&mut p)?.into())),
            Long("memory") => target = Some(Target::Memory),
            Long("url") => url = Some(value(&mut p)?),
            Long("token") => token = Some(value(&mut p)?),
            Long("tenant") => tenant = Some(value(&mut p)?),
            Long("database") => database = Some(value(&mut p)?),
            Short('h') | Long("help") => break Command::Help,
            Value(cmd) => break command(&cmd.string().map_err(|_| "command is not UTF-8")?, &mut p)?,
            other => return Err(other.unexpected().to_string()),
        }
    };
    if stores.len() > 1 {
        return Err(format!("choose one store: --{} and --{} both given", stores[0], stores[1]));
    }
    if let Some(url) = url {
        target = Some(Target::Url { url, token });
    } else if token.is_some() {
        return Err("--token goes with --url URL".into());
    }
    Ok(Cli { target, tenant, database, command })
}

fn value(p: &mut lexopt::Parser) -> Result<String, String> {
    p.value().map_err(|e| e.to_string())?.string().map_err(|_| "argument is not UTF-8".to_string())
}

fn number(p: &mut lexopt::Parser, flag: &str) -> Result<usize, String> {
    let v = value(p)?;
    v.parse().map_err(|_| format!("{flag} expects a non-negative integer, got {v:?}"))
}

fn name(p: &mut lexopt::Parser, cmd: &str) -> Result<String, String> {
    match p.next().map_err(|e| e.to_string())? {
        Some(Value(v)) => v.string().map_err(|_| "collection name is not UTF-8".into()),
        _ => Err(format!("`{cmd}` needs a collection NAME")),
    }
}

fn read_opt(flag: &str, p: &mut lexopt::Parser, r: &mut ReadOpts) -> Result<bool, String> {
    match flag {
        "ids" => r.ids = Some(value(p)?.split(',').map(str::to_owned).collect()),
        "where" => r.where_ = Some(value(p)?),
        "where-document" => r.where_document = Some(value(p)?),
        "include" => r.include = Some(value(p)?),
        "json" => r.json = true,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Every option a command can take, as parsed; [`Flags::into_command`] keeps the ones it uses.
struct Flags {
    read: ReadOpts,
    json: bool,
    yes: bool,
    file: Option<PathBuf>,
    space: Option<String>,
    metadata: Option<String>,
    emb: Option<PathBuf>,
    limit: Option<usize>,
    offset: Option<usize>,
    n_results: usize,
    batch_size: usize,
    dir: Option<PathBuf>,
    bench: BenchOpts,
    embed: EmbedOpts,
    system: String,
    store: PathBuf,
    open_only: bool,
    from: Option<Target>,
    to: Option<Target>,
    collections: Vec<String>,
}

impl Flags {
    fn new() -> Flags {
        Flags {
            read: ReadOpts::default(),
            json: false,
            yes: false,
            file: None,
            space: None,
            metadata: None,
            emb: None,
            limit: None,
            offset: None,
            n_results: 10,
            batch_size: 1000,
            dir: None,
            bench: BenchOpts::default(),
            embed: EmbedOpts::default(),
            system: String::new(),
            store: PathBuf::new(),
            open_only: false,
            from: None,
            to: None,
            collections: Vec::new(),
        }
    }

    /// Reads `--flag` (and its value from `p`); `false` when no command knows it.
    fn set(&mut self, flag: &str, p: &mut lexopt::Parser) -> Result<bool, String> {
        if read_opt(flag, p, &mut self.read)? {
            return Ok(true);
        }
        match flag {
            "json" => self.json = true,
            "yes" => self.yes = true,
            "dry-run" => self.yes = false,
            "file" => self.file = Some(PathBuf::from(value(p)?)),
            "space" => self.space = Some(value(p)?),
            "metadata" => self.metadata = Some(value(p)?),
            "embeddings" => self.emb = Some(PathBuf::from(value(p)?)),
            "text" => self.embed.texts.push(value(p)?),
            "embedding-function" => self.embed.function = Some(value(p)?),
            "model-dir" => self.embed.model_dir = Some(PathBuf::from(value(p)?)),
            "limit" => self.limit = Some(number(p, "--limit")?),
            "offset" => self.offset = Some(number(p, "--offset")?),
            "n-results" => self.n_results = number(p, "--n-results")?,
            "batch-size" => self.batch_size = number(p, "--batch-size")?.max(1),
            "dir" => self.dir = Some(PathBuf::from(value(p)?)),
            "data" => self.bench.data = Some(PathBuf::from(value(p)?)),
            "scale" => self.bench.scale = Some(number(p, "--scale")?),
            "queries" => self.bench.queries = Some(number(p, "--queries")?),
            "systems" | "system" => {
                let v = value(p)?;
                self.system.clone_from(&v);
                self.bench.systems = Some(v);
            }
            "python" => self.bench.python = Some(PathBuf::from(value(p)?)),
            "work-dir" => self.bench.work_dir = Some(PathBuf::from(value(p)?)),
            "json-out" => self.bench.json = Some(PathBuf::from(value(p)?)),
            "svg" => self.bench.svg = Some(PathBuf::from(value(p)?)),
            "store" => self.store = PathBuf::from(value(p)?),
            "open-only" => self.open_only = true,
            "from" => self.from = Some(Target::Path(value(p)?.into())),
            "from-lance" => self.from = Some(Target::Lance(value(p)?.into())),
            "to" => self.to = Some(Target::Path(value(p)?.into())),
            "to-lance" => self.to = Some(Target::Lance(value(p)?.into())),
            "collection" => self.collections.push(value(p)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The command `cmd` on collection `name` (empty for commands without one).
    fn into_command(self, cmd: &str, name: String) -> Result<Command, String> {
        let Flags {
            read,
            json,
            yes,
            file,
            space,
            metadata,
            emb,
            limit,
            offset,
            n_results,
            batch_size,
            dir,
            bench,
            embed,
            system,
            store,
            open_only,
            from,
            to,
            collections,
        } = self;
        Ok(match cmd {
            "collections" => Command::Collections { json: json || read.json },
            "create" => Command::Create { name, space, metadata, embed },
            "import" => {
                Command::Import { name, file: file.ok_or("import needs --file FILE")?, batch_size, space, embed }
            }
            "export" => Command::Export { name, file },
            "count" => Command::Count { name },
            "get" => Command::Get { name, limit, offset, read },
            "query" => {
                if emb.is_some() != embed.texts.is_empty() {
                    return Err("query needs --embeddings FILE.json or --text \"...\" (one of them)".into());
                }
                Command::Query { name, embeddings: emb, n_results, read, embed }
            }
            "delete" => {
                let limit = limit
                    .map(|n| u32::try_from(n).map_err(|_| format!("--limit must be at most {}, got {n}", u32::MAX)))
                    .transpose()?;
                Command::Delete { name, limit, read }
            }
            "doctor" => Command::Doctor { json: json || read.json },
            "repair" => Command::Repair { yes },
            "cleanup" => Command::Cleanup { yes },
            "demo" => Command::Demo { dir },
            "bench" => {
                Command::Bench(BenchOpts { limit, json: bench.json.or(json.then(|| PathBuf::from("-"))), ..bench })
            }
            "migrate" => Command::Migrate {
                from: from.ok_or("migrate needs --from DIR or --from-lance DIR")?,
                to: to.ok_or("migrate needs --to DIR or --to-lance DIR")?,
                collections,
                batch_size,
            },
            "bench-worker" => {
                Command::BenchWorker { system, data: bench.data.ok_or("bench-worker needs --data")?, store, open_only }
            }
            "help" => Command::Help,
            other => return Err(format!("unknown command {other:?}; run `chromalite help`")),
        })
    }
}

/// The options `cmd` takes (`None` for a command no one knows: `into_command` reports it). An
/// option another command takes is refused too, not ignored: `count NAME --where ...` must not
/// print the unfiltered count as if it were the filtered one.
fn options_of(cmd: &str) -> Option<&'static [&'static str]> {
    const READ: [&str; 4] = ["ids", "where", "where-document", "include"];
    Some(match cmd {
        "collections" | "doctor" => &["json"],
        "create" => &["space", "metadata", "embedding-function"],
        "import" => &["file", "batch-size", "space", "embedding-function", "model-dir"],
        "export" => &["file"],
        "count" | "help" => &[],
        "get" => &[READ[0], READ[1], READ[2], READ[3], "json", "limit", "offset"],
        "query" => &[
            READ[0],
            READ[1],
            READ[2],
            READ[3],
            "json",
            "embeddings",
            "text",
            "n-results",
            "model-dir",
            "embedding-function",
        ],
        "delete" => &[READ[0], READ[1], READ[2], "limit"],
        "repair" => &["yes"],
        "cleanup" => &["yes", "dry-run"],
        "demo" => &["dir"],
        "bench" => &["data", "limit", "scale", "queries", "systems", "python", "work-dir", "json-out", "svg", "json"],
        "migrate" => &["from", "from-lance", "to", "to-lance", "collection", "batch-size"],
        "bench-worker" => &["system", "systems", "data", "store", "open-only"],
        _ => return None,
    })
}

fn command(cmd: &str, p: &mut lexopt::Parser) -> Result<Command, String> {
    let needs_name = matches!(cmd, "create" | "import" | "export" | "count" | "get" | "query" | "delete");
    let name = if needs_name { name(p, cmd)? } else { String::new() };
    let mut flags = Flags::new();
    let mut seen = Vec::new();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        let flag = match arg {
            Long(l) => l.to_owned(),
            other => return Err(format!("{cmd}: {}", other.unexpected())),
        };
        let known = options_of(cmd).is_none_or(|opts| opts.contains(&flag.as_str()));
        if !known || !flags.set(&flag, p)? {
            return Err(format!("{cmd}: unexpected option --{flag}"));
        }
        seen.push(flag);
    }
    if ["yes", "dry-run"].iter().all(|f| seen.iter().any(|s| s == f)) {
        return Err(format!("{cmd}: --dry-run and --yes exclude each other"));
    }
    flags.into_command(cmd, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_global_options_and_query() {
        let cli =
            parse_from(["--memory", "query", "docs", "--embeddings", "q.json", "--n-results", "3", "--json"]).unwrap();
        assert_eq!(cli.target, Some(Target::Memory));
        match cli.command {
            Command::Query { name, n_results, read, .. } => {
                assert_eq!((name.as_str(), n_results, read.json), ("docs", 3, true));
            }
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn parses_migrate_both_ways() {
        let cli = parse_from(["migrate", "--from", "a", "--to-lance", "b", "--collection", "x", "--collection", "y"])
            .unwrap();
        match cli.command {
            Command::Migrate { from, to, collections, .. } => {
                assert_eq!(from, Target::Path("a".into()));
                assert_eq!(to, Target::Lance("b".into()));
                assert_eq!(collections, ["x", "y"]);
            }
            other => panic!("parsed {other:?}"),
        }
        assert!(parse_from(["migrate", "--from-lance", "b"]).is_err());
    }

    #[test]
    fn rejects_unknown_flags_and_missing_names() {
        assert!(parse_from(["--memory", "count"]).is_err());
        assert!(parse_from(["--memory", "get", "x", "--bogus"]).is_err());
        assert!(parse_from(["--memory", "get", "x", "--limit", "-1"]).is_err());
    }

    #[test]
    fn refuses_options_of_other_commands_two_stores_and_contradictions() {
        let err = |args: &[&str]| parse_from(args.iter().copied()).unwrap_err();
        assert!(err(&["--memory", "count", "x", "--where", "{}"]).contains("count: unexpected option --where"));
        assert!(err(&["--memory", "collections", "--limit", "3"]).contains("--limit"));
        assert!(err(&["--memory", "get", "x", "--n-results", "3"]).contains("--n-results"));
        assert!(err(&["--memory", "create", "x", "--file", "f"]).contains("--file"));
        assert!(err(&["--path", "a", "--memory", "count", "x"]).contains("--path and --memory"));
        assert!(err(&["--url", "http://h", "--path", "a", "count", "x"]).contains("--url and --path"));
        assert!(err(&["--path", "a", "--token", "t", "count", "x"]).contains("--token"));
        assert!(err(&["--path", "a", "cleanup", "--yes", "--dry-run"]).contains("exclude"));
        // What each command takes still parses.
        for args in [
            &["--path", "a", "--tenant", "t", "--database", "d", "get", "x", "--ids", "a,b", "--where", "{}"][..],
            &[
                "--path",
                "a",
                "get",
                "x",
                "--where-document",
                "{}",
                "--limit",
                "1",
                "--offset",
                "1",
                "--include",
                "documents",
                "--json",
            ],
            &[
                "--url",
                "http://h",
                "--token",
                "t",
                "query",
                "x",
                "--embeddings",
                "q.json",
                "--n-results",
                "2",
                "--include",
                "distances",
                "--json",
            ],
            &["--memory", "create", "x", "--space", "ip", "--metadata", "{}"],
            &["--path", "a", "import", "x", "--file", "f", "--batch-size", "2"],
            &["--path", "a", "export", "x", "--file", "f"],
            &["--path", "a", "collections", "--json"],
            &["--path", "a", "doctor", "--json"],
            &["--path", "a", "repair", "--yes"],
            &["--path", "a", "cleanup", "--dry-run"],
            &["--path", "a", "delete", "x", "--ids", "a"],
            &["bench-worker", "--system", "persistent", "--data", "d", "--store", "s", "--open-only"],
        ] {
            assert!(parse_from(args.iter().copied()).is_ok(), "{args:?}: {:?}", parse_from(args.iter().copied()).err());
        }
    }
}
