//! The guest's serial console: QEMU's stdio, captured by a reader thread into a buffer and a log.

use std::{
    fs::File,
    io::{Read, Write},
    process::{ChildStdin, ChildStdout},
    sync::{Arc, Condvar, Mutex},
    thread,
    time::{Duration, Instant},
};

use crate::error::{Error, IoContext, Result};

#[derive(Default)]
struct Shared {
    /// Everything the guest printed, `\r` removed.
    text: String,
    /// The reader saw end of file (QEMU exited).
    eof: bool,
}

/// The console of one QEMU instance.
pub struct Console {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    input: ChildStdin,
}

impl Console {
    /// Starts capturing `out` into memory and `log`; `input` is the guest's keyboard.
    pub fn new(mut out: ChildStdout, input: ChildStdin, mut log: File) -> Self {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let s2 = Arc::clone(&shared);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = out.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*s2;
                let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    g.eof = true;
                    cv.notify_all();
                    return;
                }
                let _ = log.write_all(&buf[..n]);
                let chunk = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
                g.text.push_str(&chunk);
                cv.notify_all();
            }
        });
        Self { shared, input }
    }

    /// Types `s` on the guest's console.
    pub fn send(&mut self, s: &str) -> Result<()> {
        self.input
            .write_all(s.as_bytes())
            .and_then(|_| self.input.flush())
            .ctx(|| "writing to the guest console".into())
    }

    /// Current length of the captured text: a cursor for [`Console::wait_for`].
    pub fn cursor(&self) -> usize {
        self.lock().text.len()
    }

    /// Waits until `find` recognises something in the text after `from`, and returns what it
    /// found plus the cursor just past the examined text. `find` gets the text after `from`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        from: usize,
        timeout: Duration,
        mut find: impl FnMut(&str) -> Option<(T, usize)>,
    ) -> Result<(T, usize)> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.shared;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let from = from.min(g.text.len());
            if let Some((v, end)) = find(&g.text[from..]) {
                return Ok((v, from + end));
            }
            if g.eof {
                return Err(Error::Unexpected(format!(
                    "QEMU exited while waiting for {what}"
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    what: what.into(),
                    after: timeout,
                });
            }
            g = cv
                .wait_timeout(g, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Waits for a literal `needle` after `from`; returns the cursor past it.
    pub fn wait_str(&self, needle: &str, from: usize, timeout: Duration) -> Result<usize> {
        self.wait_for(needle, from, timeout, |t| {
            t.find(needle).map(|i| ((), i + needle.len()))
        })
        .map(|(_, c)| c)
    }

    /// The text between two cursors.
    pub fn slice(&self, from: usize, to: usize) -> String {
        let g = self.lock();
        let to = to.min(g.text.len());
        g.text[from.min(to)..to].to_string()
    }

    /// The last `n` lines the guest printed.
    pub fn tail(&self, n: usize) -> String {
        let g = self.lock();
        let lines: Vec<&str> = g.text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
