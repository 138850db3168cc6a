//! The CLI's error: a message printed as one line, or an exit status whose explanation was
//! already printed, or a closed stdout (a pipe into `head`), which ends the program quietly.

use std::fmt::Display;
use std::io;

pub enum CliError {
    Message(String),
    /// The command printed its findings (verify's problems, say); exit with this status.
    Failed(i32),
    BrokenPipe,
}

pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    pub fn msg(m: impl Display) -> CliError {
        CliError::Message(m.to_string())
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Message(e.to_string())
        }
    }
}

macro_rules! from_display {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Message(e.to_string())
            }
        }
    )*};
}

from_display!(
    chronokv::Error,
    chronokv_runs::Error,
    chronokv_wal::Error,
    arrow_schema::ArrowError,
    serde_json::Error,
    String
);

/// Adds the file to an I/O error's message.
pub fn io_at(path: &std::path::Path) -> impl Fn(io::Error) -> CliError + '_ {
    move |e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Message(format!("{}: {e}", path.display()))
        }
    }
}
