//! The one interning table of the dump builder: names, comms, frame tokens
//! and the `/proc` frame-text memo all go through [`Interner`].
//!
//! An interner keeps only ids (`u32`) in a `hashbrown` table; the values live
//! in a [`Pool`] the caller owns (the dump's `names` or `comm_names`, its
//! `token_*` columns, the memo's text arena), so nothing is stored twice and
//! an id is the value's index in its pool.

use hashbrown::hash_table::HashTable;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

/// The hasher of every interner: rustc-hash's Fx hasher, unseeded (interning
/// order, not hash order, decides ids). Measured (cachegrind, 10 MB, one and
/// two threads) against foldhash's fast hasher and the hand-written tables
/// this interner replaced: the fewest instructions per parsed frame.
pub(crate) type State = rustc_hash::FxBuildHasher;

/// Where the values interned as `K` live, indexed by id.
pub(crate) trait Pool<K: ?Sized + Hash> {
    /// Number of values (the next id).
    fn count(&self) -> usize;
    /// Whether value `id` equals `key`.
    fn is(&self, id: u32, key: &K) -> bool;
    /// The hash `key` would have if it were value `id` (used when the table grows).
    fn hash_of(&self, id: u32, state: &State) -> u64;
    /// Stores `key` as value number [`Pool::count`].
    fn push(&mut self, key: &K);
}

/// A value → id table over a [`Pool`]: ids are given in first-occurrence order.
pub(crate) struct Interner<K: ?Sized> {
    table: HashTable<u32>,
    state: State,
    key: PhantomData<fn(&K)>,
}

impl<K: ?Sized> Default for Interner<K> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            state: State::default(),
            key: PhantomData,
        }
    }
}

impl<K: ?Sized> fmt::Debug for Interner<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl<K: ?Sized + Hash> Interner<K> {
    /// Number of interned values.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The hash of `key` in this table.
    #[inline]
    pub(crate) fn hash(&self, key: &K) -> u64 {
        self.state.hash_one(key)
    }

    /// The id of `key` (whose [`Interner::hash`] is `hash`), if interned.
    #[inline]
    pub(crate) fn get<P: Pool<K>>(&self, key: &K, hash: u64, pool: &P) -> Option<u32> {
        self.table.find(hash, |&id| pool.is(id, key)).copied()
    }

    /// The id of `key`, pushing it to `pool` first when it is new.
    ///
    /// # Panics
    /// When a pool would hold more than `u32::MAX` values.
    #[inline]
    pub(crate) fn intern<P: Pool<K>>(&mut self, key: &K, pool: &mut P) -> u32 {
        let hash = self.hash(key);
        self.intern_hashed(key, hash, pool)
    }

    /// [`Interner::intern`] with the hash already computed.
    ///
    /// # Panics
    /// As [`Interner::intern`].
    #[inline]
    pub(crate) fn intern_hashed<P: Pool<K>>(&mut self, key: &K, hash: u64, pool: &mut P) -> u32 {
        // Hits outnumber misses by orders of magnitude: a plain probe first,
        // and the insertion (which may grow the table) only for a new value.
        if let Some(&id) = self.table.find(hash, |&id| pool.is(id, key)) {
            return id;
        }
        let id = u32::try_from(pool.count())
            .ok()
            .filter(|&id| id != u32::MAX)
            .expect("fewer than 2^32 - 1 interned values");
        pool.push(key);
        let state = &self.state;
        let pool = &*pool;
        self.table
            .insert_unique(hash, id, |&id| pool.hash_of(id, state));
        id
    }
}

/// String equality without a `memcmp` call: interned keys are names and
/// frame texts of a dozen to a few dozen bytes, where the call and its setup
/// cost more than comparing eight bytes at a time inline (profiled: `memcmp`
/// took ~5% of a snapshot parse through `==`).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    while at + 8 <= a.len() {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    a[at..].iter().zip(&b[at..]).all(|(x, y)| x == y)
}

/// Strings kept as `Vec<String>` (the dump's `names` and `comm_names`).
impl Pool<str> for Vec<String> {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn is(&self, id: u32, key: &str) -> bool {
        same_bytes(self[id as usize].as_bytes(), key.as_bytes())
    }

    fn hash_of(&self, id: u32, state: &State) -> u64 {
        state.hash_one(self[id as usize].as_str())
    }

    fn push(&mut self, key: &str) {
        self.push(key.to_owned());
    }
}

/// Strings kept end to end in one arena (no allocation per string).
#[derive(Debug, Default)]
pub(crate) struct Arena {
    text: String,
    /// `(start, end)` of each string in `text`.
    spans: Vec<(usize, usize)>,
}

impl Arena {
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &str {
        let (start, end) = self.spans[id as usize];
        &self.text[start..end]
    }
}

impl Pool<str> for Arena {
    #[inline]
    fn count(&self) -> usize {
        self.spans.len()
    }

    #[inline]
    fn is(&self, id: u32, key: &str) -> bool {
        same_bytes(self.get(id).as_bytes(), key.as_bytes())
    }

    fn hash_of(&self, id: u32, state: &State) -> u64 {
        state.hash_one(self.get(id))
    }

    fn push(&mut self, key: &str) {
        let start = self.text.len();
        self.text.push_str(key);
        self.spans.push((start, self.text.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_occurrence_and_survive_growth() {
        let mut table = Interner::<str>::default();
        let mut names: Vec<String> = Vec::new();
        let mut arena_table = Interner::<str>::default();
        let mut arena = Arena::default();
        let keys: Vec<String> = (0..20_000).map(|i| format!("k{}", i % 7001)).collect();
        for (i, k) in keys.iter().enumerate() {
            let id = table.intern(k, &mut names);
            assert_eq!(id as usize, i % 7001);
            assert_eq!(arena_table.intern(k, &mut arena), id);
        }
        assert_eq!(
            (table.len(), names.len(), arena.count()),
            (7001, 7001, 7001)
        );
        for (id, k) in names.iter().enumerate() {
            assert_eq!(arena.get(id as u32), k);
            assert_eq!(table.get(k, table.hash(k), &names), Some(id as u32));
        }
        assert_eq!(table.get("absent", table.hash("absent"), &names), None);
    }

    #[test]
    fn same_bytes_is_equality() {
        let words = [
            "",
            "a",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnopq",
        ];
        for x in words {
            for y in words {
                assert_eq!(
                    same_bytes(x.as_bytes(), y.as_bytes()),
                    x == y,
                    "{x:?} {y:?}"
                );
            }
        }
        assert!(!same_bytes(b"abcdefghij", b"abcdefghik"));
        assert!(!same_bytes(b"xbcdefghij", b"abcdefghij"));
    }
}
