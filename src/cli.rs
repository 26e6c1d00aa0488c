//! Command-line interface (clap derive).  This is the binary's edge: it
//! opens inputs, runs the pipeline, picks a renderer and maps outcomes to the
//! documented exit codes.  `anyhow` is used here only.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::capture::CaptureReader;
use crate::model::FlowsReport;
use crate::pipeline::{self, NoSink, RunOptions};
use crate::render;

/// Exit code: success, input read completely.
pub const EXIT_OK: i32 = 0;
/// Exit code: a check failed (`check`, `--fail-on`); reserved for those commands.
pub const EXIT_CHECK_FAILED: i32 = 1;
/// Exit code: the input could not be read at all (not a capture, I/O error, bad usage).
pub const EXIT_CANNOT_READ: i32 = 2;
/// Exit code: results were produced but the input was damaged (truncated or corrupt records).
pub const EXIT_PARTIAL: i32 = 3;

/// Inputs larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "edgetrace",
    version,
    about = "Offline capture analyzer for Skype for Business / Lync / Teams Edge traffic",
    long_about = "edgetrace reads Wireshark captures (pcap, pcapng, gzipped or not, or - for stdin) \
and explains Edge traffic: flows, STUN/TURN/MS-TURN, ICE, SIP and TLS.\n\n\
Frame numbers and stream indices are Wireshark's: `tcp.stream eq N` in Wireshark shows the same flow.\n\n\
Exit codes: 0 ok; 1 check failed; 2 input unreadable; 3 results produced but the capture is damaged \
(truncated or corrupt records, see the summary)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Never show a progress bar (it only appears on a terminal for large inputs anyway).
    #[arg(long, global = true)]
    no_progress: bool,

    /// Track at most this many TCP/UDP flows (memory bound for captures of
    /// millions of tiny flows).  Packets of further flows are counted as
    /// skipped (`flow-table-full`) and a finding says so.
    #[arg(long, global = true, default_value_t = crate::flow::FlowTable::DEFAULT_LIMIT as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_flows: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One row per TCP/UDP flow: Wireshark stream index, endpoints, frames, bytes,
    /// and TCP health (handshake, FIN/RST, retransmissions, gaps, idle time).
    Flows(InputArgs),
    /// Every STUN / TURN / MS-TURN message, wherever it hides (UDP, TCP with any
    /// framing, inside ChannelData, Send/Data indications and RFC 6062 data
    /// connections), with requests paired to responses.
    Stun(StunArgs),
    /// One entry per TURN allocation (client 5-tuple at the server) with its life in
    /// order: 401 challenge, Allocate, Refresh, permissions, channels, RFC 6062
    /// Connect/ConnectionBind, deallocation — and an outcome with the reason.
    Turn(StunArgs),
    /// ICE sessions (ufrag pairs) from connectivity checks wherever they travel
    /// (UDP, TCP, inside TURN): candidate pairs with a verdict per pair (both
    /// ways, one way only, failed), the nominated pair, and the SIP dialog and
    /// SDP candidates behind each session when SIP is in the capture.
    Ice(InputArgs),
    /// Every TLS connection (any port): TCP versus TLS roles (normal or
    /// reversed, as on 8057), hellos, certificates with an EKU verdict by TLS
    /// role, alerts, handshake outcome, data, how it ended, idle resets and
    /// reconnects; then the 8057 section when that port is in use.
    Tls(InputArgs),
    /// Every analyzer at once, then the findings: what is wrong, worst first,
    /// each with its evidence (frames, streams, addresses), a Wireshark display
    /// filter and a hint.  With --fail-on, exit 1 when a finding that bad exists.
    Report(ReportArgs),
    /// Re-analyses a capture and compares its report with a saved baseline
    /// (volatile fields ignored): exit 0 when equal, 1 when not, listing each
    /// changed JSON path.  Given a directory, checks every capture that has a
    /// NAME.expected.json beside it.
    Check(CheckArgs),
    /// Every SIP message (UDP, reassembled fragments, TCP on any port) with Via,
    /// Route and diagnostics; per dialog the ladder, route set and hop chain.
    Sip(SipArgs),
}

#[derive(Args, Debug)]
struct SipArgs {
    #[command(flatten)]
    input: InputArgs,

    #[command(flatten)]
    secrets: SecretArgs,

    /// Show only this dialog (its Call-ID).
    #[arg(long)]
    dialog: Option<String>,

    /// Label addresses with roles: a file of `ADDRESS[/PREFIX] = NAME` lines
    /// (e.g. `10.5.16.113 = Edge internal`).  Microsoft 365 Teams/Skype media
    /// ranges are labelled without a file.
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
}

/// Severity threshold for --fail-on.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FailOn {
    /// Fail on errors only.
    Error,
    /// Fail on warnings and errors.
    Warning,
}

#[derive(Args, Debug)]
struct ReportArgs {
    #[command(flatten)]
    input: InputArgs,

    #[command(flatten)]
    secrets: SecretArgs,

    /// Exit 1 when a finding of this severity or worse is present (for CI).
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,

    /// The A/V Edge relay port range the firewalls allow (`turn.relay-port-range`).
    #[arg(long, value_name = "FIRST-LAST", default_value = "50000-59999", value_parser = parse_port_range)]
    relay_ports: (u16, u16),

    /// Label addresses with roles (see `edgetrace sip --help`).
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// A capture, or a directory of captures with NAME.expected.json baselines.
    path: PathBuf,

    /// The baseline for a single capture (default: NAME.expected.json beside it).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,

    /// Rewrite the baseline(s) from the current analysis instead of comparing.
    #[arg(long)]
    update: bool,
}

fn parse_port_range(s: &str) -> std::result::Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected FIRST-LAST, e.g. 50000-59999"))?;
    let a: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not a port"))?;
    let b: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not a port"))?;
    if a > b {
        return Err(format!("{a} > {b}"));
    }
    Ok((a, b))
}

#[derive(Args, Debug)]
struct StunArgs {
    #[command(flatten)]
    input: InputArgs,

    #[command(flatten)]
    secrets: SecretArgs,
}

#[derive(Args, Debug)]
struct SecretArgs {
    /// Print secrets (MESSAGE-INTEGRITY, TURN and MRAS passwords, a=ice-pwd,
    /// SRTP keys) instead of redacting them.
    #[arg(long)]
    show_secrets: bool,

    /// Hide usernames (TURN USERNAME, MRAS username): they identify a user.
    #[arg(long)]
    redact_usernames: bool,
}

impl SecretArgs {
    fn redaction(&self) -> crate::model::Redaction {
        crate::model::Redaction {
            show_secrets: self.show_secrets,
            redact_usernames: self.redact_usernames,
        }
    }
}

/// Output formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    /// Human-readable tables.
    Table,
    /// JSON with a schema_version (see README).
    Json,
    /// Mermaid sequence diagrams in Markdown fenced blocks (sip, turn, ice).
    Mermaid,
}

#[derive(Args, Debug)]
struct InputArgs {
    /// Capture file: pcap or pcapng, optionally gzipped; `-` reads standard input.
    capture: PathBuf,

    /// Print JSON instead of tables (same as --format json).
    #[arg(long)]
    json: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,

    /// Table output: show at most this many rows (0 = all).  JSON is never cut.
    #[arg(long, default_value_t = 500)]
    limit: usize,
}

impl InputArgs {
    fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.format
        }
    }
}

/// Parses arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                EXIT_CANNOT_READ
            } else {
                EXIT_OK
            };
        }
    };
    let outcome = run(&cli);
    if std::env::var_os("EDGETRACE_PEAK_RSS").is_some() {
        print_peak_rss();
    }
    match outcome {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return EXIT_OK;
            }
            eprintln!("edgetrace: error: {e:#}");
            EXIT_CANNOT_READ
        }
    }
}

/// With `EDGETRACE_PEAK_RSS` set, prints this process's peak resident memory
/// (`VmHWM` of /proc/self/status, Linux) on stderr: the memory-bound tests and
/// the benchmark read it.  A parent's `wait4` cannot be used for this: when
/// the child is spawned with vfork, the kernel counts the parent's pages too.
fn print_peak_rss() {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return;
    };
    if let Some(kib) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        eprintln!("edgetrace: peak RSS {kib} KiB");
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: &Cli) -> Result<i32> {
    let input = match &cli.command {
        Command::Flows(a) | Command::Ice(a) | Command::Tls(a) => Some(a),
        Command::Stun(a) | Command::Turn(a) => Some(&a.input),
        Command::Sip(a) => Some(&a.input),
        Command::Report(a) => Some(&a.input),
        Command::Check(_) => None,
    };
    let diagrams = matches!(
        &cli.command,
        Command::Sip(_) | Command::Turn(_) | Command::Ice(_)
    );
    if input.is_some_and(|i| i.format() == OutputFormat::Mermaid) && !diagrams {
        anyhow::bail!("--format mermaid is available for sip, turn and ice");
    }
    match &cli.command {
        Command::Flows(args) => flows(cli, args),
        Command::Stun(args) => stun(cli, args),
        Command::Turn(args) => turn(cli, args),
        Command::Sip(args) => sip(cli, args),
        Command::Ice(args) => ice(cli, args),
        Command::Tls(args) => tls(cli, args),
        Command::Report(args) => report(cli, args),
        Command::Check(args) => check(cli, args),
    }
}

fn open(args: &InputArgs) -> Result<CaptureReader> {
    let name = args.capture.display().to_string();
    CaptureReader::open(&args.capture).with_context(|| format!("cannot read {name}"))
}

fn run_options(cli: &Cli, reader: &CaptureReader) -> RunOptions {
    let big = reader.input_len().is_none_or(|n| n >= PROGRESS_MIN_BYTES);
    RunOptions {
        progress: !cli.no_progress && big && io::stderr().is_terminal(),
        max_flows: Some(usize::try_from(cli.max_flows).unwrap_or(usize::MAX)),
        flow_counts: false,
    }
}

fn table_style() -> render::table::Style {
    let tty = io::stdout().is_terminal();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    render::table::Style {
        unicode: tty && !no_color,
        width: None,
    }
}

/// Reports damage on stderr and picks exit code 0 or 3.
fn damage_exit(name: &str, read: &crate::capture::ReadStats) -> i32 {
    if let Some(t) = &read.truncated {
        eprintln!(
            "edgetrace: warning: {name} is truncated at byte {} (after frame {}): {}; everything before was analysed",
            t.offset, t.after_frame, t.reason
        );
    }
    if read.damage_count > 0 {
        eprintln!(
            "edgetrace: warning: {name}: {} damaged record(s) skipped; first at byte {}: {}",
            read.damage_count,
            read.damage.first().map(|d| d.offset).unwrap_or(0),
            read.damage.first().map(|d| d.reason.as_str()).unwrap_or("")
        );
    }
    if read.is_damaged() {
        EXIT_PARTIAL
    } else {
        EXIT_OK
    }
}

fn flows(cli: &Cli, args: &InputArgs) -> Result<i32> {
    let name = args.capture.display().to_string();
    let reader = open(args)?;
    let opts = RunOptions {
        flow_counts: true,
        ..run_options(cli, &reader)
    };
    let result =
        pipeline::run(reader, &opts, &mut NoSink).with_context(|| format!("reading {name}"))?;
    let read = result.read.clone();
    if args.format() == OutputFormat::Json {
        // written row by row: the rows are never all held at once
        let mut out = io::BufWriter::new(io::stdout().lock());
        render::json::write(&mut out, &FlowsReport::stream(&result, &name))?;
        out.flush()?;
        exit_without_freeing(result);
    } else {
        // the rows the table shows, and how many there are
        let (report, total) = if args.limit == 0 {
            let report = FlowsReport::from_run(result, &name);
            let total = report.flows.len();
            (report, total)
        } else {
            FlowsReport::first_rows(&result, &name, args.limit)
        };
        emit(args, &report, |out, r| {
            render::table::flows(out, r, table_style(), total)
        })?;
        exit_without_freeing(report);
    }
    Ok(damage_exit(&name, &read))
}

/// Leaves a command's results to the operating system: the process exits
/// right after the output is written, and freeing hundreds of thousands of
/// small allocations one by one cost about 0.2 s of a 1 GiB `report`
/// (docs/performance.md).
fn exit_without_freeing<T>(results: T) {
    std::mem::forget(results);
}

/// Runs the STUN finder over the input (`finder` says what it keeps).
fn find_stun(
    cli: &Cli,
    input: &InputArgs,
    name: &str,
    finder: crate::analyze::stun::StunFinder,
) -> Result<(pipeline::RunResult, crate::analyze::stun::Core)> {
    let reader = open(input)?;
    let opts = run_options(cli, &reader);
    let (result, shards) =
        pipeline::run_sharded(reader, &opts, finder).with_context(|| format!("reading {name}"))?;
    let core = crate::analyze::stun::merge(shards, &result.flows);
    Ok((result, core))
}

/// A diagram renderer for `--format mermaid`.
type Diagram<T> = fn(&mut dyn Write, &T) -> io::Result<()>;

/// Prints a report as JSON, with its table renderer, or as diagrams.
fn emit<T: serde::Serialize>(
    input: &InputArgs,
    report: &T,
    table: impl FnOnce(&mut dyn Write, &T) -> io::Result<()>,
) -> Result<()> {
    emit_with(input, report, table, None)
}

fn emit_with<T: serde::Serialize>(
    input: &InputArgs,
    report: &T,
    table: impl FnOnce(&mut dyn Write, &T) -> io::Result<()>,
    diagram: Option<Diagram<T>>,
) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match (input.format(), diagram) {
        (OutputFormat::Json, _) => render::json::write(&mut out, report)?,
        (OutputFormat::Table, _) => table(&mut out, report)?,
        (OutputFormat::Mermaid, Some(d)) => d(&mut out, report)?,
        (OutputFormat::Mermaid, None) => {
            anyhow::bail!("--format mermaid is available for sip, turn and ice")
        }
    }
    out.flush()?;
    Ok(())
}

fn stun(cli: &Cli, args: &StunArgs) -> Result<i32> {
    let input = &args.input;
    let name = input.capture.display().to_string();
    let finder = crate::analyze::stun::StunFinder::keeping_all();
    let (result, core) = find_stun(cli, input, &name, finder)?;
    let redaction = args.secrets.redaction();
    let report = if input.format() == OutputFormat::Json {
        // written message by message: every message's output is never held at once
        let report = crate::model::stun::StunReport::build_without_messages(&result, &core, &name);
        let mut out = io::BufWriter::new(io::stdout().lock());
        render::json::write(&mut out, &report.stream(&result, &core, redaction))?;
        out.flush()?;
        report
    } else {
        let report = crate::model::stun::StunReport::build(&result, &core, &name, redaction);
        emit(input, &report, |out, r| {
            render::table::stun(out, r, table_style(), input.limit)
        })?;
        report
    };
    let code = damage_exit(&name, &result.read);
    exit_without_freeing((result, core, report));
    Ok(code)
}

fn turn(cli: &Cli, args: &StunArgs) -> Result<i32> {
    let input = &args.input;
    let name = input.capture.display().to_string();
    let finder = crate::analyze::stun::StunFinder::default();
    let (result, mut core) = find_stun(cli, input, &name, finder)?;
    let end = result.read.last_ts.unwrap_or(0);
    let trackers = core.take_turn();
    let binds = crate::analyze::turn::Binds::of_messages(&core.found, &result.flows);
    let allocs = crate::analyze::turn::allocations(trackers, &binds, &core, &result.flows, end);
    let report = crate::model::turn::TurnReport::build(
        &result,
        &allocs,
        &name,
        args.secrets.redact_usernames,
    );
    emit_with(
        input,
        &report,
        |out, r| render::table::turn(out, r, table_style()),
        Some(render::mermaid::turn),
    )?;
    let code = damage_exit(&name, &result.read);
    exit_without_freeing((result, core, allocs, report));
    Ok(code)
}

fn sip(cli: &Cli, args: &SipArgs) -> Result<i32> {
    let input = &args.input;
    let name = input.capture.display().to_string();
    let roles = load_roles(args.roles.as_deref())?;
    let reader = open(input)?;
    let opts = run_options(cli, &reader);
    let (result, shards) =
        pipeline::run_sharded(reader, &opts, crate::analyze::sip::SipFinder::default())
            .with_context(|| format!("reading {name}"))?;
    let core = crate::analyze::sip::merge(shards);
    let redaction = args.secrets.redaction();
    let json = input.format() == OutputFormat::Json;
    // JSON is written message by message: every message's output is never held at once
    let keep = if json {
        crate::model::sip::Messages::Streamed
    } else {
        crate::model::sip::Messages::All
    };
    let mut report =
        crate::model::sip::SipReport::build_with(&result, &core, &name, redaction, &roles, keep);
    if let Some(c) = &args.dialog {
        report
            .messages
            .retain(|m| m.call_id.as_deref() == Some(c.as_str()));
        report.dialogs.retain(|d| &d.call_id == c);
    }
    if json {
        let stream = report.stream(&result, &core, redaction, &roles, args.dialog.as_deref());
        let mut out = io::BufWriter::new(io::stdout().lock());
        render::json::write(&mut out, &stream)?;
        out.flush()?;
    } else {
        emit_with(
            input,
            &report,
            |out, r| render::table::sip(out, r, table_style(), input.limit, args.dialog.as_deref()),
            Some(render::mermaid::sip),
        )?;
    }
    let code = damage_exit(&name, &result.read);
    exit_without_freeing((result, core, report));
    Ok(code)
}

/// The built-in role labels plus those of `--roles FILE`.
fn load_roles(path: Option<&std::path::Path>) -> Result<crate::roles::Roles> {
    let Some(p) = path else {
        return Ok(crate::roles::Roles::builtin());
    };
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read roles file {}", p.display()))?;
    crate::roles::Roles::with_file(&text)
        .map_err(|e| anyhow::anyhow!("roles file {}: {e}", p.display()))
}

fn ice(cli: &Cli, input: &InputArgs) -> Result<i32> {
    let name = input.capture.display().to_string();
    let reader = open(input)?;
    let opts = run_options(cli, &reader);
    let finders = (
        crate::analyze::stun::StunFinder::default(),
        crate::analyze::sip::SipFinder::streamed(),
    );
    // batch by batch, in capture order: the SDP of the SIP messages is
    // collected and the STUN messages are folded into checks; neither kind
    // of message is kept
    let mut sdp = crate::analyze::ice::SdpCollector::default();
    let mut checks = crate::analyze::ice::CheckFold::default();
    let (result, shards) = pipeline::run_sharded_with(
        reader,
        &opts,
        finders,
        |shards, _, _| {
            (
                crate::analyze::sip::take_batch(shards.iter_mut().map(|s| &mut s.1)),
                crate::analyze::stun::take_batch(shards.iter_mut().map(|s| &mut s.0)),
            )
        },
        |(sip, stun)| {
            sip.iter().for_each(|f| sdp.push(f));
            stun.iter().for_each(|f| checks.push(f));
            sdp.settle(checks.sdp_wanted());
        },
    )
    .with_context(|| format!("reading {name}"))?;
    let stun_shards: Vec<_> = shards.into_iter().map(|s| s.0).collect();
    let stun = crate::analyze::stun::merge(stun_shards, &result.flows);
    let sdp = sdp.finish_for(checks.sdp_wanted());
    let sessions = checks.finish(sdp, &stun, &result.flows);
    let report = crate::model::ice::IceReport::build(&result, &sessions, &name);
    emit_with(
        input,
        &report,
        |out, r| render::table::ice(out, r, table_style(), input.limit),
        Some(render::mermaid::ice),
    )?;
    let code = damage_exit(&name, &result.read);
    exit_without_freeing((result, stun, sessions, report));
    Ok(code)
}

fn tls(cli: &Cli, input: &InputArgs) -> Result<i32> {
    let name = input.capture.display().to_string();
    let reader = open(input)?;
    let opts = run_options(cli, &reader);
    let (result, shards) =
        pipeline::run_sharded(reader, &opts, crate::analyze::tls::TlsFinder::default())
            .with_context(|| format!("reading {name}"))?;
    let core = crate::analyze::tls::merge(shards);
    let report = crate::model::tls::TlsReport::build(&result, &core, &name);
    emit(input, &report, |out, r| {
        render::table::tls(out, r, table_style(), input.limit)
    })?;
    let code = damage_exit(&name, &result.read);
    exit_without_freeing((result, core, report));
    Ok(code)
}

fn report(cli: &Cli, args: &ReportArgs) -> Result<i32> {
    let input = &args.input;
    let name = input.capture.display().to_string();
    let options = crate::model::report::ReportOptions {
        redaction: args.secrets.redaction(),
        roles: load_roles(args.roles.as_deref())?,
        findings: crate::findings::Options {
            relay_ports: args.relay_ports,
        },
    };
    let reader = open(input)?;
    let opts = run_options(cli, &reader);
    let (mut analysis, sip) = crate::model::report::analyze(reader, &opts, &name, &options)
        .with_context(|| format!("reading {name}"))?;
    let t = std::time::Instant::now();
    let report = crate::model::report::Report::build(&mut analysis, sip, &name, &options);
    let built = t.elapsed();
    if input.format() == OutputFormat::Json {
        // the long lists written side by side (same bytes as `emit`)
        let mut out = io::BufWriter::new(io::stdout().lock());
        render::json::write_report(&mut out, &report)?;
        out.flush()?;
    } else {
        emit(input, &report, |out, r| {
            render::table::report(out, r, table_style(), input.limit)
        })?;
    }
    if std::env::var_os("EDGETRACE_TIMINGS").is_some() {
        for (phase, d) in &analysis.timings {
            eprintln!("edgetrace: {:>8.3} s  {phase}", d.as_secs_f64());
        }
        eprintln!(
            "edgetrace: {:>8.3} s  models and findings",
            built.as_secs_f64()
        );
        eprintln!(
            "edgetrace: {:>8.3} s  output",
            (t.elapsed() - built).as_secs_f64()
        );
    }
    let failed = match (args.fail_on, report.worst()) {
        (Some(FailOn::Error), Some(crate::findings::Severity::Error)) => true,
        (Some(FailOn::Warning), Some(s)) => s <= crate::findings::Severity::Warning,
        _ => false,
    };
    if failed {
        eprintln!(
            "edgetrace: {} finding(s) at or above --fail-on",
            report
                .findings
                .iter()
                .filter(|f| match args.fail_on {
                    Some(FailOn::Error) => f.severity == crate::findings::Severity::Error,
                    _ => f.severity <= crate::findings::Severity::Warning,
                })
                .count()
        );
        exit_without_freeing((analysis, report));
        return Ok(EXIT_CHECK_FAILED);
    }
    let code = damage_exit(&name, &analysis.run.read);
    exit_without_freeing((analysis, report));
    Ok(code)
}

/// The report of a capture as JSON, with `meta` removed (what `check` compares).
fn report_value(cli: &Cli, capture: &std::path::Path) -> Result<serde_json::Value> {
    let name = capture.display().to_string();
    let reader = CaptureReader::open(capture).with_context(|| format!("cannot read {name}"))?;
    let opts = run_options(cli, &reader);
    let options = crate::model::report::ReportOptions {
        roles: crate::roles::Roles::builtin(),
        ..Default::default()
    };
    let (mut analysis, sip) = crate::model::report::analyze(reader, &opts, &name, &options)
        .with_context(|| format!("reading {name}"))?;
    let report = crate::model::report::Report::build(&mut analysis, sip, &name, &options);
    let mut v = serde_json::to_value(&report)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
    }
    Ok(v)
}

/// `samples/x.pcap` → `samples/x.expected.json`.
fn baseline_for(capture: &std::path::Path) -> PathBuf {
    let stem = capture
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = [".pcapng.gz", ".pcap.gz", ".pcapng", ".pcap", ".cap", ".gz"]
        .iter()
        .find_map(|e| stem.strip_suffix(e))
        .unwrap_or(&stem)
        .to_string();
    capture.with_file_name(format!("{stem}.expected.json"))
}

/// Checks (or updates) one capture; returns the differences.
fn check_one(
    cli: &Cli,
    capture: &std::path::Path,
    baseline: &std::path::Path,
    update: bool,
) -> Result<Vec<String>> {
    let now = report_value(cli, capture)?;
    if update {
        let mut text = serde_json::to_string_pretty(&now)?;
        text.push('\n');
        std::fs::write(baseline, text)
            .with_context(|| format!("cannot write {}", baseline.display()))?;
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(baseline)
        .with_context(|| format!("cannot read baseline {}", baseline.display()))?;
    let mut old: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("baseline {} is not JSON", baseline.display()))?;
    if let Some(o) = old.as_object_mut() {
        o.remove("meta");
    }
    let mut diffs = Vec::new();
    crate::render::diff::json_diff("", &old, &now, &mut diffs);
    Ok(diffs)
}

fn check(cli: &Cli, args: &CheckArgs) -> Result<i32> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.path.is_dir() {
        let mut captures: Vec<PathBuf> = std::fs::read_dir(&args.path)
            .with_context(|| format!("cannot list {}", args.path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && baseline_for(p) != *p && baseline_for(p).exists())
            .collect();
        captures.sort();
        let (mut passed, mut failed) = (0, 0);
        for c in &captures {
            let diffs = check_one(cli, c, &baseline_for(c), args.update)?;
            if args.update {
                writeln!(out, "updated {}", baseline_for(c).display())?;
            } else if diffs.is_empty() {
                passed += 1;
                writeln!(out, "ok      {}", c.display())?;
            } else {
                failed += 1;
                writeln!(
                    out,
                    "CHANGED {} ({} difference(s))",
                    c.display(),
                    diffs.len()
                )?;
                for d in diffs.iter().take(20) {
                    writeln!(out, "    {d}")?;
                }
                if diffs.len() > 20 {
                    writeln!(out, "    … {} more", diffs.len() - 20)?;
                }
            }
        }
        if !args.update {
            writeln!(out, "{passed} passed, {failed} failed")?;
        }
        out.flush()?;
        if captures.is_empty() {
            eprintln!(
                "edgetrace: no capture in {} has a NAME.expected.json beside it",
                args.path.display()
            );
        }
        return Ok(if failed > 0 {
            EXIT_CHECK_FAILED
        } else {
            EXIT_OK
        });
    }
    let baseline = args
        .baseline
        .clone()
        .unwrap_or_else(|| baseline_for(&args.path));
    let diffs = check_one(cli, &args.path, &baseline, args.update)?;
    if args.update {
        writeln!(out, "updated {}", baseline.display())?;
    } else if diffs.is_empty() {
        writeln!(
            out,
            "ok      {} matches {}",
            args.path.display(),
            baseline.display()
        )?;
    } else {
        writeln!(
            out,
            "CHANGED {} differs from {} ({} difference(s))",
            args.path.display(),
            baseline.display(),
            diffs.len()
        )?;
        for d in &diffs {
            writeln!(out, "    {d}")?;
        }
    }
    out.flush()?;
    Ok(if diffs.is_empty() {
        EXIT_OK
    } else {
        EXIT_CHECK_FAILED
    })
}
