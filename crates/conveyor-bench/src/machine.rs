//! The machine a run happened on: cores, CPU model, memory, kernel, date.

use serde::{Deserialize, Serialize};

/// What the report says about the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo, or `unknown`.
    pub cpu_model: String,
    /// Total memory in GiB (from /proc/meminfo), if known.
    pub memory_gib: Option<f64>,
    /// `Linux 6.1.0` or the target OS.
    pub os: String,
    /// UTC date and time of the run, `2026-11-25 18:30 UTC`.
    pub date: String,
    /// The Python interpreter used for the originals, if any.
    pub python: Option<String>,
}

impl Machine {
    /// Reads the machine's description; unknown parts say so.
    pub fn detect(python: Option<&str>) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".into()),
            memory_gib: mem_total_gib(&meminfo),
            os: if release.trim().is_empty() {
                std::env::consts::OS.to_string()
            } else {
                format!("Linux {}", release.trim())
            },
            date: utc_now(),
            python: python.map(str::to_string),
        }
    }

    /// One line: `2 cores, Intel(R) Xeon(R) ..., 24 GiB, Linux 6.1.0, python 3.11.7`.
    pub fn one_line(&self) -> String {
        let mut s = format!("{} cores, {}", self.cores, self.cpu_model);
        if let Some(m) = self.memory_gib {
            s.push_str(&format!(", {m:.0} GiB"));
        }
        s.push_str(&format!(", {}", self.os));
        match &self.python {
            Some(v) => s.push_str(&format!(", python {v}")),
            None => s.push_str(", no python"),
        }
        s
    }
}

/// The first `model name` in /proc/cpuinfo text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn mem_total_gib(meminfo: &str) -> Option<f64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_model() {
        let text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)  CPU @ 2.20GHz\nflags\t: x\n";
        assert_eq!(cpu_model(text).unwrap(), "Intel(R) Xeon(R) CPU @ 2.20GHz");
        assert_eq!(cpu_model("nothing"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn detect_fills_every_field() {
        let m = Machine::detect(Some("3.11"));
        assert!(m.cores >= 1);
        assert!(m.one_line().contains("python 3.11"));
        assert!(m.date.ends_with("UTC"));
    }
}
