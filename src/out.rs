//! The buffer packets are appended to.
//!
//! A `Vec<u8>` whose bytes past the written end stay allocated and
//! initialised, with the written length kept beside it. The short packet
//! paths write whole words into a fixed-size window at the end and then
//! count only what they wrote; with a plain `Vec`, safe code would have to
//! zero that window first (it cannot write into uninitialised capacity) and
//! cut it back afterwards, on every packet.

use std::ops::{Deref, DerefMut};

/// How far past the written end [`Out::grow`] initialises a large buffer.
const STEP: usize = 64 << 10;

pub(crate) struct Out {
    /// The packets, `[..len]`, then initialised room.
    bytes: Vec<u8>,
    len: usize,
}

impl Out {
    /// An empty buffer with room for `room` bytes.
    pub(crate) fn with_room(room: usize) -> Self {
        // Allocated, then zeroed: `vec![0; room]`, or a zeroing the
        // compiler sees follow the allocation, becomes calloc, which glibc
        // serves without its thread cache.
        let mut bytes = std::hint::black_box(Vec::with_capacity(room));
        bytes.resize(room, 0);
        Out { bytes, len: 0 }
    }

    /// Bytes written.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The byte at `at`, a place already written, to back-fill a length:
    /// one bounds check where indexing the bytes written would take two.
    #[inline(always)]
    pub(crate) fn written_mut(&mut self, at: usize) -> Option<&mut u8> {
        debug_assert!(at < self.len);
        self.bytes.get_mut(at)
    }

    /// Bytes written and room together.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes that can be written before the buffer must grow.
    #[inline(always)]
    pub(crate) fn room(&self) -> usize {
        self.bytes.len() - self.len
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, byte: u8) {
        match self.bytes.get_mut(self.len) {
            Some(b) => {
                *b = byte;
                self.len += 1;
            }
            None => self.extend_slow(&[byte]),
        }
    }

    #[inline(always)]
    pub(crate) fn extend_from_slice(&mut self, s: &[u8]) {
        let end = self.len + s.len();
        match self.bytes.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(s);
                self.len = end;
            }
            None => self.extend_slow(s),
        }
    }

    #[cold]
    #[inline(never)]
    fn extend_slow(&mut self, s: &[u8]) {
        self.grow(s.len());
        self.extend_from_slice(s);
    }

    /// Appends `n` zero bytes.
    pub(crate) fn extend_zeros(&mut self, n: usize) {
        let end = self.len + n;
        if end > self.bytes.len() {
            self.grow(n);
        }
        if let Some(dst) = self.bytes.get_mut(self.len..end) {
            dst.fill(0);
            self.len = end;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps only the first `n` bytes written.
    pub(crate) fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Drops the first `n` bytes written, moving the rest to the front.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.bytes.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// The `N` bytes after the end, to be written in place and then kept
    /// in part with [`Out::commit`]; what they held before is left over
    /// from earlier packets. `None` never happens: the buffer grows first.
    #[inline(always)]
    pub(crate) fn window<const N: usize>(&mut self) -> Option<&mut [u8; N]> {
        if self.room() < N {
            self.grow(N);
        }
        self.window_in_room()
    }

    /// [`Out::window`] for the short paths of begins and ends: `None` if the
    /// room is short (they then take the general path, which grows the
    /// buffer), so the only check is the one that proves the window in
    /// bounds.
    #[inline(always)]
    pub(crate) fn window_in_room<const N: usize>(&mut self) -> Option<&mut [u8; N]> {
        // One range: its end within the bytes, and its start (the written
        // length, far below `usize::MAX - N`) at most its end.
        self.bytes
            .get_mut(self.len..self.len + N)?
            .first_chunk_mut()
    }

    /// Keeps `n` more bytes, written through [`Out::window`]: at most its
    /// size, which the callers' masks ensure.
    #[inline(always)]
    pub(crate) fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.room());
        self.len += n;
    }

    /// Grows the room to at least `need` bytes. The allocation doubles, as
    /// a `Vec`'s does; the initialised part doubles up to [`STEP`], then
    /// grows by steps of it, so that a long trace's buffer is zeroed a
    /// little ahead of the packets written into it, while in cache, rather
    /// than half of it at once.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, need: usize) {
        let target = self.len + need.max(self.bytes.len().min(STEP));
        if target > self.bytes.capacity() {
            let doubled = (self.bytes.capacity() * 2).max(target);
            self.bytes.reserve_exact(doubled - self.bytes.len());
        }
        self.bytes.resize(target, 0);
    }

    /// Grows the room to exactly `room` bytes, if it has less.
    pub(crate) fn reserve_exact(&mut self, room: usize) {
        let target = self.len + room;
        if target > self.bytes.len() {
            self.bytes.reserve_exact(target - self.bytes.len());
            self.bytes.resize(target, 0);
        }
    }

    /// The bytes written, as a `Vec` (its spare capacity is the room).
    #[inline]
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.bytes.truncate(self.len);
        self.bytes
    }
}

/// Where the packet framed at `at` ends, if a whole frame header is there.
/// The core writes only framed `Trace.packet` fields (key 0x0a, then a
/// varint length), so packet boundaries can be walked from any boundary.
pub(crate) fn frame_end(buf: &[u8], at: usize) -> Option<usize> {
    let mut len = 0u64;
    for (i, &b) in buf.get(at + 1..)?.iter().take(10).enumerate() {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(at + 2 + i + usize::try_from(len).ok()?);
        }
    }
    None
}

impl From<Vec<u8>> for Out {
    /// A buffer that has written `bytes`; its room is the `Vec`'s length
    /// once cleared (its spare capacity is not initialised).
    fn from(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        Out { bytes, len }
    }
}

impl Deref for Out {
    type Target = [u8];

    /// The bytes written.
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl DerefMut for Out {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::Out;

    #[test]
    fn appends_grows_and_keeps_what_was_written() {
        let mut out = Out::with_room(2);
        out.push(1);
        out.extend_from_slice(&[2, 3, 4]);
        out.extend_zeros(2);
        assert_eq!(&out[..], &[1, 2, 3, 4, 0, 0]);
        // A window sees old bytes; only what is committed counts.
        out.consume(2);
        assert_eq!(&out[..], &[3, 4, 0, 0]);
        out.clear();
        let w = out.window::<8>().unwrap();
        assert_eq!(&w[..4], &[3, 4, 0, 0]);
        w[0] = 9;
        out.commit(1);
        assert_eq!(&out[..], &[9]);
        assert!(out.capacity() >= 8);
        assert_eq!(out.into_vec(), vec![9]);
    }

    #[test]
    fn reserve_exact_grows_to_the_room_asked() {
        let mut out = Out::with_room(4);
        out.extend_from_slice(&[1, 2, 3]);
        out.reserve_exact(100);
        assert_eq!(out.capacity(), 103);
        out.reserve_exact(10);
        assert_eq!(out.capacity(), 103);
    }
}
