//! Reports: stacks resolved to source lines, the pprof file, and the text summary.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::proto;
use super::record::{snapshot, Entry};
use super::{block_rate, mutex_rate, Kind};

/// One source frame of a resolved stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Frame {
    /// Demangled function name without the hash suffix.
    function: String,
    /// Source file, or `""` if unknown.
    file: String,
    /// Source line, or 0 if unknown.
    line: u32,
}

/// Resolves one return address to its frames, innermost (inlined) first.
fn resolve(ip: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    // A return address points after the call; the call itself is one byte earlier.
    let addr = ip.saturating_sub(1) as *mut core::ffi::c_void;
    backtrace::resolve(addr, |sym| {
        frames.push(Frame {
            function: sym
                .name()
                .map(|n| format!("{n:#}"))
                .unwrap_or_else(|| format!("{ip:#x}")),
            file: sym
                .filename()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
            line: sym.lineno().unwrap_or(0),
        });
    });
    if frames.is_empty() {
        frames.push(Frame {
            function: format!("{ip:#x}"),
            file: String::new(),
            line: 0,
        });
    }
    frames
}

/// Frames of the profiler, the locks and the standard library at the top of a stack: they
/// are dropped so that a stack starts in the code that called into gosync.
fn is_internal(function: &str) -> bool {
    let f = function.trim_start_matches(['<', '&']);
    [
        "backtrace::",
        "gosync::",
        "core::",
        "std::",
        "alloc::",
        "lock_api::",
    ]
    .iter()
    .any(|p| f.starts_with(p))
}

/// A stack resolved once per report: each address with its frames (innermost first), with
/// the internal frames at the top removed.
struct Resolver {
    cache: HashMap<usize, Vec<Frame>>,
}

impl Resolver {
    fn new() -> Self {
        Resolver {
            cache: HashMap::new(),
        }
    }

    /// `(address, frames of that address)` from the innermost caller of gosync outwards.
    fn stack(&mut self, ips: &[usize]) -> Vec<(usize, Vec<Frame>)> {
        let mut out: Vec<(usize, Vec<Frame>)> = ips
            .iter()
            .map(|&ip| {
                let frames = self.cache.entry(ip).or_insert_with(|| resolve(ip)).clone();
                (ip, frames)
            })
            .collect();
        // Drop internal frames from the top, keeping at least one frame.
        let total: usize = out.iter().map(|(_, f)| f.len()).sum();
        let mut dropped = 0;
        while let Some((_, frames)) = out.first_mut() {
            match frames.first() {
                Some(f) if is_internal(&f.function) && dropped + 1 < total => {
                    frames.remove(0);
                    dropped += 1;
                    if frames.is_empty() {
                        out.remove(0);
                    }
                }
                _ => break,
            }
        }
        out
    }
}

/// The aggregate of one call site (the innermost frame outside gosync) in one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The function (demangled, without its hash), e.g. `my_crate::Cache::refresh`.
    pub function: String,
    /// Its source file (empty if the binary has no debug info).
    pub file: String,
    /// The line of the call into gosync (0 if unknown).
    pub line: u32,
    /// Estimated contentions (sampled events times their weight).
    pub contentions: u64,
    /// Estimated total delay.
    pub delay: Duration,
    /// The longest single sampled delay.
    pub max_delay: Duration,
}

/// The recorded samples of one profile, aggregated per call site (the innermost frame outside
/// gosync and the standard library), largest total delay first.
///
/// For [`Kind::Mutex`] the site is where the lock was *released* after others waited; for
/// [`Kind::Block`] where a thread waited.
pub fn sites(kind: Kind) -> Vec<Site> {
    let mut resolver = Resolver::new();
    let mut by_site: HashMap<Frame, Entry> = HashMap::new();
    for (ips, e) in snapshot(kind) {
        let stack = resolver.stack(&ips);
        let Some(top) = stack.first().and_then(|(_, f)| f.first()) else {
            continue;
        };
        let agg = by_site.entry(top.clone()).or_default();
        agg.count = agg.count.saturating_add(e.count);
        agg.delay = agg.delay.saturating_add(e.delay);
        agg.max = agg.max.max(e.max);
    }
    let mut sites: Vec<Site> = by_site
        .into_iter()
        .map(|(f, e)| Site {
            function: f.function,
            file: f.file,
            line: f.line,
            contentions: e.count,
            delay: Duration::from_nanos(e.delay),
            max_delay: Duration::from_nanos(e.max),
        })
        .collect();
    sites.sort_by(|a, b| b.delay.cmp(&a.delay).then(a.function.cmp(&b.function)));
    sites
}

/// A plain-text report of both profiles: for each, the `n` call sites with the largest total
/// delay (contentions, total delay, longest delay, site).
///
/// ```
/// let report = gosync::profile::top(10);
/// assert!(report.starts_with("mutex profile"));
/// ```
pub fn top(n: usize) -> String {
    let mut out = String::new();
    for (kind, title, rate) in [
        (
            Kind::Mutex,
            "mutex profile (delay charged to the holder that unlocked)",
            format!("rate {}", mutex_rate()),
        ),
        (
            Kind::Block,
            "block profile (delay charged to the waiter)",
            format!("rate {} ns", block_rate()),
        ),
    ] {
        let sites = sites(kind);
        let _ = writeln!(out, "{title}, {rate}: {} sites", sites.len());
        if sites.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{:>12} {:>14} {:>14}  site",
            "contentions", "total delay", "max delay"
        );
        for s in sites.iter().take(n) {
            let _ = writeln!(
                out,
                "{:>12} {:>14} {:>14}  {} ({}:{})",
                s.contentions,
                format!("{:.3?}", s.delay),
                format!("{:.3?}", s.max_delay),
                s.function,
                s.file,
                s.line
            );
        }
    }
    out
}

/// Builds pprof's string table (index 0 is `""`, as the format requires).
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings {
            table: Vec::new(),
            index: HashMap::new(),
        };
        s.get("");
        s
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// Builds the pprof `Profile` message of one profile.
fn build(kind: Kind) -> proto::Profile {
    let mut strings = Strings::new();
    let mut resolver = Resolver::new();
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut locations: HashMap<(usize, usize), u64> = HashMap::new();
    let mut profile = proto::Profile::default();

    let count = proto::ValueType {
        r#type: strings.get("contentions"),
        unit: strings.get("count"),
    };
    let delay = proto::ValueType {
        r#type: strings.get("delay"),
        unit: strings.get("nanoseconds"),
    };
    profile.default_sample_type = delay.r#type;
    profile.sample_type = vec![count.clone(), delay];
    profile.period_type = Some(count);
    profile.period = 1;
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    profile.mapping.push(proto::Mapping {
        id: 1,
        memory_start: 0,
        memory_limit: u64::MAX,
        filename: strings.get(&exe),
        has_functions: true,
        has_filenames: true,
        has_line_numbers: true,
        has_inline_frames: true,
        ..Default::default()
    });

    for (ips, e) in snapshot(kind) {
        let mut sample = proto::Sample {
            location_id: Vec::new(),
            value: vec![
                i64::try_from(e.count).unwrap_or(i64::MAX),
                i64::try_from(e.delay).unwrap_or(i64::MAX),
            ],
        };
        for (ip, frames) in resolver.stack(&ips) {
            // The same address can appear with fewer frames (top of a stack, trimmed).
            let key = (ip, frames.len());
            let next_id = profile.location.len() as u64 + 1;
            let id = *locations.entry(key).or_insert(next_id);
            if id == next_id {
                let mut lines = Vec::with_capacity(frames.len());
                for f in &frames {
                    let fkey = (f.function.clone(), f.file.clone());
                    let next_fn = profile.function.len() as u64 + 1;
                    let function_id = *functions.entry(fkey).or_insert(next_fn);
                    if function_id == next_fn {
                        profile.function.push(proto::Function {
                            id: function_id,
                            name: strings.get(&f.function),
                            system_name: strings.get(&f.function),
                            filename: strings.get(&f.file),
                        });
                    }
                    lines.push(proto::Line {
                        function_id,
                        line: i64::from(f.line),
                    });
                }
                profile.location.push(proto::Location {
                    id,
                    mapping_id: 1,
                    address: ip as u64,
                    line: lines,
                });
            }
            sample.location_id.push(id);
        }
        profile.sample.push(sample);
    }
    profile.time_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    profile.string_table = strings.table;
    profile
}

/// Writes one profile in pprof's format (a gzipped `profile.proto` message) to `writer`:
/// `go tool pprof -top FILE` (or `pprof -http=: FILE`, speedscope) reads it.
///
/// Values are `contentions/count` and `delay/nanoseconds`, as in the files Go writes for
/// `-mutex` and `-block`. Stacks are resolved to function names and lines here (the file
/// needs no binary to be read); the frames of gosync and the standard library at the top of
/// each stack are left out, so the innermost frame is the caller of the lock operation.
///
/// # Errors
/// The writer's errors.
pub fn write_pprof<W: io::Write>(writer: W, kind: Kind) -> io::Result<()> {
    use prost::Message as _;
    let bytes = build(kind).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?;
    Ok(())
}
