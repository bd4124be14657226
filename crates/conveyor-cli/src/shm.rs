//! `conveyor shm ...`: list, inspect, remove and clean segments.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Subcommand;
use conveyor_shm::{SegmentDetails, SegmentInfo, SegmentKind};
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub(crate) enum ShmCommand {
    /// Lists every conveyor segment and out-of-line message file: name, kind, size, the
    /// processes attached (alive or dead), age, and whether it is leaked.
    List {
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Shows one segment's header: a queue's capacity, items and bytes queued, processes
    /// attached, producers (on an auto_shutdown queue), closed or not; a value's or array's
    /// element type.
    Inspect {
        /// The segment's name, as `list` shows it.
        name: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Removes segments by name, whoever uses them (handles already open keep working; new
    /// opens fail). A `/NAME` is a shared-memory block.
    Rm {
        /// The segments' names, as `list` shows them.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Removes every leaked segment (every process that used it is dead), and nothing else.
    Clean {
        /// Shows what would be removed, removes nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(crate) fn run(cmd: ShmCommand) -> ExitCode {
    let result = match cmd {
        ShmCommand::List { json } => list(json),
        ShmCommand::Inspect { name, json } => inspect(&name, json),
        ShmCommand::Rm { names } => rm(&names),
        ShmCommand::Clean { dry_run } => clean(dry_run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("conveyor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A failure that ends the command, with what to say.
type Failure = String;

fn segments() -> Result<Vec<SegmentInfo>, Failure> {
    conveyor_shm::list_segments().map_err(|e| {
        format!(
            "cannot read the segment directory {}: {e}",
            conveyor_shm::shm_dir().display()
        )
    })
}

fn kind_name(kind: SegmentKind) -> &'static str {
    match kind {
        SegmentKind::Queue => "queue",
        SegmentKind::Lock => "lock",
        SegmentKind::RLock => "rlock",
        SegmentKind::Value => "value",
        SegmentKind::Array => "array",
        SegmentKind::SharedMemory => "shared memory",
        SegmentKind::OutOfLine => "out-of-line message",
        SegmentKind::Unknown => "unknown",
        _ => "other",
    }
}

fn age_secs(created: Option<SystemTime>) -> Option<u64> {
    created.and_then(|c| c.elapsed().ok()).map(|d| d.as_secs())
}

fn human_age(secs: Option<u64>) -> String {
    match secs {
        None => "?".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 2 * 3600 => format!("{}m", s / 60),
        Some(s) if s < 2 * 86400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86400),
    }
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An attached process, for JSON.
#[derive(Serialize)]
struct Attached {
    pid: u32,
    alive: bool,
}

/// One segment, for JSON.
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    path: String,
    kind: &'static str,
    size: u64,
    creator_pid: Option<u32>,
    attached: Vec<Attached>,
    age_secs: Option<u64>,
    leaked: bool,
}

impl<'a> Listed<'a> {
    fn of(s: &'a SegmentInfo) -> Self {
        Listed {
            name: &s.name,
            path: s.path.display().to_string(),
            kind: kind_name(s.kind),
            size: s.len,
            creator_pid: s.creator_pid,
            attached: s
                .attached
                .iter()
                .map(|&pid| Attached {
                    pid,
                    alive: s.alive.contains(&pid),
                })
                .collect(),
            age_secs: age_secs(s.created),
            leaked: s.leaked,
        }
    }
}

fn attached_text(s: &SegmentInfo) -> String {
    if s.attached.is_empty() {
        return "-".into();
    }
    s.attached
        .iter()
        .map(|p| {
            if s.alive.contains(p) {
                p.to_string()
            } else {
                format!("{p} (dead)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn to_json<T: Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(v).map_err(|e| format!("cannot write JSON: {e}"))
}

fn list(json: bool) -> Result<ExitCode, Failure> {
    let all = segments()?;
    if json {
        let listed: Vec<Listed> = all.iter().map(Listed::of).collect();
        println!("{}", to_json(&listed)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!(
            "no conveyor segments in {}",
            conveyor_shm::shm_dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                kind_name(s.kind).to_string(),
                human_size(s.len),
                attached_text(s),
                human_age(age_secs(s.created)),
                if s.leaked { "leaked" } else { "" }.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "SIZE", "ATTACHED", "AGE", "LEAKED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    let leaked = all.iter().filter(|s| s.leaked).count();
    if leaked > 0 {
        println!("\n{leaked} leaked: `conveyor shm clean` removes them");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `inspect --json` prints.
#[derive(Serialize)]
struct Inspected<'a> {
    #[serde(flatten)]
    listed: Listed<'a>,
    magic: Option<String>,
    version: Option<u32>,
    header_size: Option<u32>,
    fingerprint: Option<String>,
    queue: Option<QueueJson>,
    elements: Option<ElementsJson>,
    lock_recoveries: Option<u64>,
    data_head_hex: String,
}

#[derive(Serialize)]
struct QueueJson {
    ring_capacity: u64,
    max_items: Option<u64>,
    items: u64,
    bytes_queued: u64,
    unfinished_tasks: u64,
    closed: bool,
    recoveries: u64,
    auto_shutdown: bool,
    /// `[{pid, handles}]` on an auto_shutdown queue; null where producers are not counted.
    producers: Option<Vec<ProducerJson>>,
}

#[derive(Serialize)]
struct ProducerJson {
    pid: u32,
    handles: u32,
}

#[derive(Serialize)]
struct ElementsJson {
    elem_size: u64,
    elem_align: u64,
    len: u64,
}

fn magic_text(magic: u64) -> String {
    let b = magic.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_graphic()) {
        String::from_utf8_lossy(&b).into_owned()
    } else {
        format!("{magic:#018x}")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn inspected(d: &SegmentDetails) -> Inspected<'_> {
    Inspected {
        listed: Listed::of(&d.info),
        magic: d.header.map(|h| magic_text(h.magic)),
        version: d.header.map(|h| h.version),
        header_size: d.header.map(|h| h.header_size),
        fingerprint: d.header.map(|h| format!("{:#018x}", h.fingerprint)),
        queue: d.queue.as_ref().map(|q| QueueJson {
            ring_capacity: q.ring_capacity,
            max_items: q.max_items,
            items: q.items,
            bytes_queued: q.bytes,
            unfinished_tasks: q.unfinished_tasks,
            closed: q.closed,
            recoveries: q.recoveries,
            auto_shutdown: q.auto_shutdown,
            producers: q.producers.as_ref().map(|p| {
                p.iter()
                    .map(|&(pid, handles)| ProducerJson { pid, handles })
                    .collect()
            }),
        }),
        elements: d.elements.map(|e| ElementsJson {
            elem_size: e.elem_size,
            elem_align: e.elem_align,
            len: e.len,
        }),
        lock_recoveries: d.lock_recoveries,
        data_head_hex: hex(&d.data_head),
    }
}

fn inspect(name: &str, json: bool) -> Result<ExitCode, Failure> {
    let d = conveyor_shm::inspect_segment(name).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("{e}: `conveyor shm list` shows the names")
        }
        _ => format!("cannot inspect {name:?}: {e}"),
    })?;
    if json {
        println!("{}", to_json(&inspected(&d))?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &d.info;
    let mut out = vec![
        ("name", s.name.clone()),
        ("path", s.path.display().to_string()),
        ("kind", kind_name(s.kind).to_string()),
        ("size", format!("{} ({} bytes)", human_size(s.len), s.len)),
        (
            "creator",
            s.creator_pid.map_or("?".into(), |p| p.to_string()),
        ),
        ("attached", attached_text(s)),
        ("age", human_age(age_secs(s.created))),
        ("leaked", if s.leaked { "yes" } else { "no" }.to_string()),
    ];
    if let Some(h) = d.header {
        out.push(("magic", magic_text(h.magic)));
        out.push(("version", h.version.to_string()));
        out.push(("header size", format!("{} bytes", h.header_size)));
        out.push(("type fingerprint", format!("{:#018x}", h.fingerprint)));
    }
    if let Some(q) = &d.queue {
        out.push((
            "capacity",
            format!(
                "{} ring, {}",
                human_size(q.ring_capacity),
                q.max_items
                    .map_or("no bound on items".into(), |m| format!("at most {m} items"))
            ),
        ));
        out.push(("items queued", q.items.to_string()));
        out.push(("bytes queued", format!("{} bytes of the ring", q.bytes)));
        out.push(("unfinished tasks", q.unfinished_tasks.to_string()));
        out.push(("closed", if q.closed { "yes" } else { "no" }.to_string()));
        out.push((
            "producers",
            match &q.producers {
                None => "not counted (the queue was built without auto_shutdown)".to_string(),
                Some(p) if p.is_empty() => "none open".to_string(),
                Some(p) => p
                    .iter()
                    .map(|(pid, n)| format!("{pid} ({n} handle{})", if *n == 1 { "" } else { "s" }))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        ));
        out.push((
            "consumers",
            "not recorded (any attached process may get)".to_string(),
        ));
        out.push(("recoveries", q.recoveries.to_string()));
    }
    if let Some(e) = d.elements {
        out.push((
            "elements",
            format!(
                "{} of {} bytes (alignment {})",
                e.len, e.elem_size, e.elem_align
            ),
        ));
    }
    if let Some(r) = d.lock_recoveries {
        out.push(("lock recoveries", r.to_string()));
    }
    if !d.data_head.is_empty() {
        out.push(("first bytes", hex(&d.data_head)));
    }
    let w = out.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in out {
        println!("{k:<w$}  {v}");
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(names: &[String]) -> Result<ExitCode, Failure> {
    let mut failed = false;
    for name in names {
        match conveyor_shm::remove_segment(name) {
            Ok(()) => println!("removed {name}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = conveyor_shm::shm_dir();
                let block = !name.starts_with('/') && dir.join(name).is_file();
                let hint = if block {
                    format!("; a shared-memory block of that name is `/{name}`")
                } else {
                    String::new()
                };
                eprintln!(
                    "conveyor: cannot remove {name:?}: no such segment in {} \
                     (`conveyor shm list` shows the names){hint}",
                    dir.display()
                );
                failed = true;
            }
            Err(e) => {
                eprintln!("conveyor: cannot remove {name:?}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn clean(dry_run: bool) -> Result<ExitCode, Failure> {
    if dry_run {
        let leaked: Vec<SegmentInfo> = segments()?.into_iter().filter(|s| s.leaked).collect();
        for s in &leaked {
            println!(
                "would remove {} ({}, {})",
                s.name,
                kind_name(s.kind),
                human_size(s.len)
            );
        }
        println!("{} leaked; nothing removed (--dry-run)", leaked.len());
        return Ok(ExitCode::SUCCESS);
    }
    let removed = conveyor_shm::remove_leaked().map_err(|e| {
        format!(
            "cannot read the segment directory {}: {e}",
            conveyor_shm::shm_dir().display()
        )
    })?;
    for name in &removed {
        println!("removed {name}");
    }
    println!("{} leaked segments removed", removed.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_as_people_write_them() {
        assert_eq!(human_size(640), "640 B");
        assert_eq!(human_size(4 << 20), "4.0 MiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_age(Some(5)), "5s");
        assert_eq!(human_age(Some(600)), "10m");
        assert_eq!(human_age(Some(3 * 86400)), "3d");
        assert_eq!(human_age(None), "?");
        assert_eq!(magic_text(u64::from_le_bytes(*b"CONVSHMQ")), "CONVSHMQ");
        assert_eq!(magic_text(1), "0x0000000000000001");
    }
}
