//! Who is tracing: the real process id and name, the OS thread id and the
//! thread's name, as the trace processor joins them with system traces.

/// The process, read once per layer.
pub(crate) struct ProcessInfo {
    pub pid: i32,
    pub name: String,
    pub cmdline: Vec<String>,
}

impl ProcessInfo {
    pub(crate) fn current() -> Self {
        let cmdline: Vec<String> = std::env::args().collect();
        // The kernel's name for the process (what `ps` and system traces
        // show), else the executable's file name.
        let name = std::fs::read_to_string("/proc/self/comm")
            .map(|s| s.trim_end().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            })
            .unwrap_or_else(|| "process".to_owned());
        ProcessInfo {
            pid: std::process::id() as i32,
            name,
            cmdline,
        }
    }
}

/// The calling thread's OS id (what the kernel and system traces call it).
pub(crate) fn os_tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    i64::from(unsafe { libc::gettid() })
}

/// The calling thread's name: Rust's, else the kernel's (set by
/// `pthread_setname_np` or inherited), else its tid.
pub(crate) fn thread_name(tid: i64) -> String {
    if let Some(name) = std::thread::current().name() {
        return name.to_owned();
    }
    std::fs::read_to_string("/proc/thread-self/comm")
        .map(|s| s.trim_end().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("thread {tid}"))
}
