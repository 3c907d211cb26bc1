//! Interning tables of callstacks, as `InternedData` holds them: function
//! names and source paths (strings), frames (a function, a path and a
//! line), and callstacks (frames, outermost first), each to ids from 1 in
//! order of first use. Like the string tables, they are the writer's, and
//! each sequence defines what it uses (see `sequence.rs`).

use std::collections::HashMap;

use crate::interning::{Interner, Text};

/// A frame as the tables key it: the iids of its function name and source
/// path (0: none), and its line (0: none).
pub(crate) type FrameKey = (u64, u64, u32);

/// The writer's callstack tables.
#[derive(Default)]
pub(crate) struct Callstacks {
    pub(crate) functions: Interner,
    pub(crate) paths: Interner,
    frames: HashMap<FrameKey, u64>,
    stacks: HashMap<Box<[u64]>, u64>,
    /// Bytes the frames and stacks hold, for the cap on the tables.
    held: usize,
}

impl Callstacks {
    /// Entries of every table.
    pub(crate) fn len(&self) -> usize {
        self.functions.len() + self.paths.len() + self.frames.len() + self.stacks.len()
    }

    /// Bytes of what they hold.
    pub(crate) fn bytes(&self) -> usize {
        self.functions.bytes() + self.paths.bytes() + self.held
    }

    /// A function name's id, and whether it is new.
    pub(crate) fn function(&mut self, text: &mut Text, name: &str) -> (u64, bool) {
        self.functions.intern(text, name, 0)
    }

    /// A source path's id, and whether it is new.
    pub(crate) fn path(&mut self, text: &mut Text, path: &str) -> (u64, bool) {
        self.paths.intern(text, path, 0)
    }

    /// A frame's id, and whether it is new.
    pub(crate) fn frame(&mut self, key: FrameKey) -> (u64, bool) {
        let next = self.frames.len() as u64 + 1;
        match self.frames.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(next);
                self.held += std::mem::size_of::<(FrameKey, u64)>();
                (next, true)
            }
        }
    }

    /// The id of a callstack of frame ids, and whether it is new.
    pub(crate) fn stack(&mut self, frames: &[u64]) -> (u64, bool) {
        if let Some(&id) = self.stacks.get(frames) {
            return (id, false);
        }
        let id = self.stacks.len() as u64 + 1;
        self.stacks.insert(frames.into(), id);
        self.held += 8 * (frames.len() + 2);
        (id, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_from_one_in_order_of_first_use_per_table() {
        let mut t = Callstacks::default();
        let mut text = Text::new();
        assert_eq!(t.function(&mut text, "main"), (1, true));
        assert_eq!(t.path(&mut text, "main.rs"), (1, true));
        assert_eq!(t.function(&mut text, "serve"), (2, true));
        assert_eq!(t.function(&mut text, "main"), (1, false));
        assert_eq!(t.frame((1, 1, 3)), (1, true));
        assert_eq!(t.frame((1, 1, 4)), (2, true));
        assert_eq!(t.frame((1, 1, 3)), (1, false));
        assert_eq!(t.stack(&[1, 2]), (1, true));
        assert_eq!(t.stack(&[2, 1]), (2, true));
        assert_eq!(t.stack(&[1, 2]), (1, false));
        assert_eq!(t.len(), 7);
        assert!(t.bytes() >= "mainmain.rsserve".len());
    }
}
