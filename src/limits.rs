//! The limits every call is checked against: the bottom layer, so that the
//! errors that name them and every check that applies them read one place.

/// The deepest spans of one thread may nest: the trace processor drops
/// slices that would sit deeper.
pub const MAX_SPAN_DEPTH: usize = 512;

/// The longest string accepted (names, categories, files, keys, command
/// line arguments): 16 MiB keeps every packet far below what protobuf
/// parsers and the trace processor accept.
pub const MAX_STRING_LEN: usize = 16 << 20;

/// The most counter values one event may carry: the trace processor reads
/// no more.
pub const MAX_EVENT_COUNTERS: usize = 8;

/// The deepest callstack an event may carry.
pub const MAX_CALLSTACK_DEPTH: usize = 256;

/// How deep dictionaries and arrays may nest in an argument.
pub const MAX_ARG_DEPTH: usize = 32;

/// The largest timestamp accepted (the trace processor's time is an `i64`).
pub(crate) const MAX_TS: u64 = i64::MAX as u64;
