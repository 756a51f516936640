//! Process CPU and memory as OpenTelemetry metrics (`process.cpu.time`,
//! `process.memory.usage`), read from `/proc/self` when a collector asks, not on a timer.

use opentelemetry::{KeyValue, global};

/// Registers the observable instruments; their callbacks run at each metric export.
pub fn observe() {
    let meter = global::meter("keel");
    meter
        .f64_observable_counter("process.cpu.time")
        .with_unit("s")
        .with_description("CPU time used by the process, by mode")
        .with_callback(|observer| {
            if let Some((user, system)) = cpu_seconds() {
                observer.observe(user, &[KeyValue::new("cpu.mode", "user")]);
                observer.observe(system, &[KeyValue::new("cpu.mode", "system")]);
            }
        })
        .build();
    meter
        .i64_observable_up_down_counter("process.memory.usage")
        .with_unit("By")
        .with_description("Resident memory of the process")
        .with_callback(|observer| {
            if let Some(bytes) = resident_bytes() {
                observer.observe(bytes, &[]);
            }
        })
        .build();
}

#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    #[allow(clippy::cast_precision_loss)] // clock ticks: far below 2^52
    let ticks = procfs::ticks_per_second() as f64;
    #[allow(clippy::cast_precision_loss)]
    Some((stat.utime as f64 / ticks, stat.stime as f64 / ticks))
}

#[cfg(target_os = "linux")]
fn resident_bytes() -> Option<i64> {
    let statm = procfs::process::Process::myself().ok()?.statm().ok()?;
    i64::try_from(statm.resident * procfs::page_size()).ok()
}

// Elsewhere (a developer's macOS), no process metrics: the image and every deployment are Linux.
#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<(f64, f64)> {
    None
}

#[cfg(not(target_os = "linux"))]
fn resident_bytes() -> Option<i64> {
    None
}
