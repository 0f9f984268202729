//! The command line (clap structs only; SPEC §7 is a public interface:
//! add flags freely, never rename one).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Nix-style reproducible deployment of pgBackRest across a multi-cell PostgreSQL cluster.
#[derive(Debug, Parser)]
// The version names the build too: the `pgbr-agent` next to pgbr must be
// of the same one (`pgbr-agent --build-id`).
#[command(
    name = "pgbr",
    version = concat!(env!("CARGO_PKG_VERSION"), " (build ", env!("PGBR_BUILD_ID"), ")"),
    about,
    long_about = None
)]
pub struct Cli {
    /// State store: a directory (an embedded store, created when missing) or a
    /// PostgreSQL URL shared by a team (`postgresql://user@host/db?sslmode=verify-full`).
    #[arg(long, global = true, env = "PGBR_STATE", default_value = "./state")]
    pub state: std::ffi::OsString,
    /// age identity file that opens a sealed store's private keys (needed by
    /// apply, rotate, rollback and `state rekey` once the store is sealed;
    /// default: none).
    #[arg(long, global = true, env = "PGBR_IDENTITY_FILE", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A phase for `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// Only the cell's own Postgres (pg1).
    Bootstrap,
    /// pg1 plus every other cell.
    Full,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a topology; exit 0, or list every problem and exit 1.
    Check {
        /// The topology's root module.
        topology: PathBuf,
    },
    /// Print or write the rendered pgbackrest.conf files.
    Render {
        /// The topology's root module.
        topology: PathBuf,
        /// Only this cell (default: every cell; required without --out when there are several).
        #[arg(long)]
        cell: Option<String>,
        /// Which phase to render.
        #[arg(long, value_enum, default_value = "full")]
        phase: PhaseArg,
        /// Write DIR/<cell>/pgbackrest.conf for each cell instead of printing.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Perform a plan: a topology (planned now) or a saved plan file.
    Apply(ApplyArgs),
    /// Re-issue leaf certificates now, or take the next step of a CA rotation (--ca).
    Rotate(RotateArgs),
    /// Show the deployed generation, drift and certificate expiry of each cell.
    Status(StatusArgs),
    /// List the generations in the store.
    Generations {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List every certificate in the store.
    Certs {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Clock to count days left from (RFC 3339; default: now).
        #[arg(long, value_name = "T")]
        now: Option<String>,
    },
    /// Return every cell to an earlier generation's exact bytes.
    Rollback(RollbackArgs),
    /// Remove old generations and unreferenced objects.
    Gc {
        /// Keep the live generations and this many newest ones.
        #[arg(long, default_value_t = 10)]
        keep: usize,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Work on the state store as a whole: copy, verify, unlock, seal, rekey.
    #[command(subcommand)]
    State(StateCommand),
    /// Serve a remote target's operations on stdin/stdout (started on a
    /// cell's host by pgbr itself over SSH; not for people).
    #[command(hide = true)]
    Agent,
}

/// `pgbr state …`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy a whole store into an empty one (a directory or a PostgreSQL URL), verifying every object.
    Copy {
        /// The store to copy from.
        from: std::ffi::OsString,
        /// The empty store to copy into.
        to: std::ffi::OsString,
    },
    /// Check every object and every reference in the store (`--state`).
    Verify,
    /// End the lock of a pgbr that is gone (PostgreSQL stores; `--state`).
    Unlock {
        /// End the holder's session even when it may still be running.
        #[arg(long)]
        force: bool,
    },
    /// Encrypt every private key in the store to age recipients, and every later one.
    Seal(RecipientArgs),
    /// Re-encrypt the sealed keys to a new recipient set (needs --identity).
    Rekey(RecipientArgs),
}

/// The age recipients of `state seal` and `state rekey`.
#[derive(Debug, Args)]
pub struct RecipientArgs {
    /// An age X25519 recipient, `age1…` (repeatable).
    #[arg(long = "recipient", value_name = "AGE1…")]
    pub recipients: Vec<String>,
    /// A file of recipients, one `age1…` per line; `#` comments (repeatable).
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
}

/// `pgbr plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The topology's root module.
    pub topology: PathBuf,
    /// Save the plan to this file, for `pgbr apply PLAN`.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON (schema in docs/plan-json.md).
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan with this clock (RFC 3339; default: now). For tests and drills.
    #[arg(long, value_name = "T")]
    pub now: Option<String>,
    /// Plan only these cells (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', value_name = "C,..")]
    pub cells: Vec<String>,
    /// Plan deploying only this cell, in the bootstrap phase.
    #[arg(long, value_name = "C")]
    pub bootstrap: Option<String>,
}

/// `pgbr apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A topology's root module, or a plan saved by `pgbr plan --out`.
    pub target: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Apply only these cells (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', value_name = "C,..")]
    pub cells: Vec<String>,
    /// Deploy only this cell, in the bootstrap phase (no peers).
    #[arg(long, value_name = "C")]
    pub bootstrap: Option<String>,
    /// Apply with this clock (RFC 3339; default: now). More than a day off
    /// the real clock needs `--allow-clock-skew`.
    #[arg(long, value_name = "T")]
    pub now: Option<String>,
    /// Accept a `--now` more than a day off the real clock (drills, tests):
    /// the certificates issued are not valid on real servers now (default: off).
    #[arg(long)]
    pub allow_clock_skew: bool,
    /// Take over non-empty deploy dirs that pgbr did not create, and deploy
    /// dirs another store (or another copy of this state) deploys; their
    /// markers then name this store (default: off).
    #[arg(long)]
    pub adopt: bool,
    /// Deploy even when a cell runs another pgBackRest release than
    /// `[pgbackrest] version` or than the other cells (a rolling upgrade);
    /// default: refuse.
    #[arg(long)]
    pub skip_version_check: bool,
    /// Print what became of each cell as JSON on stdout (schema in
    /// docs/plan-json.md); the plan and the text for people go to stderr
    /// (default: text on stdout).
    #[arg(long)]
    pub json: bool,
}

/// `pgbr rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The topology's root module.
    pub topology: PathBuf,
    /// Perform the next step of a CA rotation instead: 1 adds a new CA to
    /// every cell's bundle, 2 re-issues every leaf from it, 3 drops the old CA.
    /// Each step is a generation; `plan` says which comes next.
    #[arg(long)]
    pub ca: bool,
    /// Only these cells (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', value_name = "C,..")]
    pub cells: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Clock (RFC 3339; default: now). More than a day off the real clock
    /// needs `--allow-clock-skew`.
    #[arg(long, value_name = "T")]
    pub now: Option<String>,
    /// Accept a `--now` more than a day off the real clock (drills, tests):
    /// the certificates issued are not valid on real servers now (default: off).
    #[arg(long)]
    pub allow_clock_skew: bool,
    /// Print what became of each cell as JSON on stdout (schema in
    /// docs/plan-json.md, as `apply --json`); the plan and the text for
    /// people go to stderr (default: text on stdout).
    #[arg(long)]
    pub json: bool,
}

/// `pgbr status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The topology's root module.
    pub topology: PathBuf,
    /// Also connect to every cell's TLS server.
    #[arg(long)]
    pub probe: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Clock (RFC 3339; default: now).
    #[arg(long, value_name = "T")]
    pub now: Option<String>,
}

/// `pgbr rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The generation to return to (default: the one before the latest).
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    /// Only show what would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Roll back even to expired or renewal-due certificates.
    #[arg(long)]
    pub force: bool,
    /// Clock for the expiry check (RFC 3339; default: now).
    #[arg(long, value_name = "T")]
    pub now: Option<String>,
    /// Print what became of each cell as JSON on stdout (schema in
    /// docs/plan-json.md); the diff and the text for people go to stderr
    /// (default: text on stdout).
    #[arg(long)]
    pub json: bool,
}
