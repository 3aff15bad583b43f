//! The name index of a view: names to values, in shards that snapshots share.
//!
//! A view is never changed while queries read it: a dynamic update builds a new view with
//! a few names changed, and both live until the old one's last reader is done. So the
//! index is split by the name's hash into shards, each behind an `Arc`; a copy of the index
//! shares every shard, and a change copies only the shard it touches (copy on write). With
//! about √n shards of about √n names, an update of a zone of 100,000 names copies a
//! few hundred entries and pointers instead of the whole map, and a lookup is still one
//! hash and one probe, as in a single map.
//!
//! The shard count is not a power of two: a table has a power-of-two number of slots and
//! fills at most 7/8 of them, so shards of a size chosen freely (√n) are often half empty.
//! Instead the slots per shard are the power of two at or above √n and there are as many
//! shards as it takes to fill each to about 80%, which a million names in entries of
//! 100 bytes make a difference of some 90 MB.
//!
//! The shard count follows the index: when it holds twice the names its shards were laid
//! out for (or a quarter of them), it is laid out again for what it holds. A zone loaded
//! with a few names and grown by dynamic updates would otherwise keep its one shard, ever
//! larger, and every update would copy all of it. A new layout copies every entry once and
//! the next comes only after as many changes again, so its cost per change is a constant;
//! the update that makes it shares nothing with the snapshot before (what compares the two
//! reads them whole, once).
//!
//! A name is hashed here ([`NameHasher`]), not through hickory's `Hash` of [`Name`], which
//! feeds SipHash one byte at a time (some 790 instructions a name, three or more hashes a
//! record while a zone loads): the name's labels, lower-cased, go through a seeded
//! multiply-and-fold hash eight bytes at a time.
//!
//! This module owns only that structure: it knows nothing of DNS beyond names being
//! case-insensitive keys (hickory's `Eq` of [`Name`], which the hash agrees with). What a
//! value is and what a view keeps in it is [`super::tree`]'s.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use hickory_proto::rr::Name;

use super::labels;
use crate::dns::wire::{MAX_NAME, write_name_lower};

/// The most shards an index has: past that, copying the table of shard pointers costs
/// more than copying a shard.
const MAX_SHARDS: usize = 1 << 14;

/// The fewest slots a shard is sized for.
const MIN_SLOTS: usize = 16;

/// Where a shard's number is taken from in the hash: 32 bits above the bits `hashbrown`
/// uses to place an entry in a shard's table (the low ones), whose high half decides,
/// below the bits it keeps as the entry's tag (the top seven), so that the names of one
/// shard still spread over its table and differ in their tags.
const SHARD_BITS_AT: u32 = 24;

/// A map from names to `V`, cheap to copy and cheap to change in a copy.
#[derive(Debug, Clone)]
pub(crate) struct NameIndex<V> {
    hasher: NameHasher,
    shards: Vec<Arc<HashTable<(Name, V)>>>,
    len: usize,
    /// The number of names the shards were laid out for ([`layout`]).
    sized_for: usize,
}

impl<V: Clone> NameIndex<V> {
    /// An empty index sized for about `names` names (it is laid out again when it holds
    /// twice as many, or a quarter).
    pub(crate) fn with_capacity(names: usize) -> NameIndex<V> {
        NameIndex::laid_out(NameHasher::new(), names)
    }

    fn laid_out(hasher: NameHasher, names: usize) -> NameIndex<V> {
        let (shards, per_shard) = layout(names);
        NameIndex {
            hasher,
            shards: (0..shards)
                .map(|_| Arc::new(HashTable::with_capacity(per_shard)))
                .collect(),
            len: 0,
            sized_for: names,
        }
    }

    fn hash(&self, name: &Name) -> u64 {
        self.hasher.hash(name)
    }

    fn shard_of(&self, hash: u64) -> usize {
        // 32 bits of the hash scaled to the shard count (at most MAX_SHARDS): the product
        // of a 32-bit number and the count, shifted back by 32 bits, is below the count.
        let bits = u64::from((hash >> SHARD_BITS_AT) as u32);
        ((bits * self.shards.len() as u64) >> 32) as usize
    }

    /// This index sharded for the names it holds: for an index sized for far more names
    /// than it got (which keeps the tables of every shard it was made with).
    pub(crate) fn resized(&self) -> NameIndex<V> {
        self.laid_out_for(self.len)
    }

    /// A copy of this index in shards laid out for `names` names.
    fn laid_out_for(&self, names: usize) -> NameIndex<V> {
        let mut index = NameIndex::laid_out(self.hasher.clone(), names);
        for (name, value) in self.iter() {
            index.insert_new(name.clone(), value.clone());
        }
        index
    }

    /// Before a name is added: lays the index out again when it holds more than twice the
    /// names its shards were laid out for (see the module's documentation). Below
    /// [`MIN_SLOTS`] names one shard is all there is to it.
    fn grow(&mut self) {
        let names = self.len + 1;
        if names <= self.sized_for.saturating_mul(2).max(MIN_SLOTS) {
            return;
        }
        if layout(names).0 == self.shards.len() {
            // The same shards do (their tables grow by themselves): nothing to copy.
            self.sized_for = names;
            return;
        }
        *self = self.laid_out_for(names);
    }

    /// After a name is removed: lays the index out again when it has four times the
    /// shards its names need (a copy of the table of shards is part of every change).
    /// Not on the count of names alone: an index laid out for a zone's records rather than
    /// its names, as a load does, is not too large for it.
    fn shrink(&mut self) {
        if self.shards.len() > 1 && layout(self.len).0.saturating_mul(4) <= self.shards.len() {
            *self = self.resized();
        }
    }

    /// Adds `name`, which the index does not hold, without laying it out again.
    fn insert_new(&mut self, name: Name, value: V) {
        let hash = self.hash(&name);
        let shard = self.shard_of(hash);
        let hasher = &self.hasher;
        Arc::make_mut(&mut self.shards[shard])
            .insert_unique(hash, (name, value), |(n, _)| hasher.hash(n));
        self.len += 1;
    }

    /// The value of `name`.
    pub(crate) fn get(&self, name: &Name) -> Option<&V> {
        self.get_key_value(name).map(|(_, v)| v)
    }

    /// The name as the index holds it (as first inserted, letter case included) and its
    /// value.
    pub(crate) fn get_key_value(&self, name: &Name) -> Option<(&Name, &V)> {
        let hash = self.hash(name);
        self.shards[self.shard_of(hash)]
            .find(hash, |(n, _)| labels::same(n, name))
            .map(|(n, v)| (n, v))
    }

    /// Whether `name` has a value.
    pub(crate) fn contains(&self, name: &Name) -> bool {
        self.get(name).is_some()
    }

    /// The value of `name`, to change: its shard is copied first if another copy of the
    /// index shares it.
    pub(crate) fn get_mut(&mut self, name: &Name) -> Option<&mut V> {
        let hash = self.hash(name);
        let shard = self.shard_of(hash);
        // Look before copying: a name that is not there costs no copy.
        self.shards[shard].find(hash, |(n, _)| labels::same(n, name))?;
        Arc::make_mut(&mut self.shards[shard])
            .find_mut(hash, |(n, _)| labels::same(n, name))
            .map(|(_, v)| v)
    }

    /// Sets the value of `name`, returning the one it replaces.
    pub(crate) fn insert(&mut self, name: Name, value: V) -> Option<V> {
        self.grow();
        let hash = self.hash(&name);
        let shard = self.shard_of(hash);
        let hasher = &self.hasher;
        let table = Arc::make_mut(&mut self.shards[shard]);
        match table.find_mut(hash, |(n, _)| labels::same(n, &name)) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                table.insert_unique(hash, (name, value), |(n, _)| hasher.hash(n));
                self.len += 1;
                None
            }
        }
    }

    /// The value of `name`, inserting `make()`'s first when it has none.
    pub(crate) fn get_or_insert_with(&mut self, name: &Name, make: impl FnOnce() -> V) -> &mut V {
        self.grow();
        let hash = self.hash(name);
        let shard = self.shard_of(hash);
        let hasher = &self.hasher;
        let table = Arc::make_mut(&mut self.shards[shard]);
        let entry = match table.entry(
            hash,
            |(n, _)| labels::same(n, name),
            |(n, _)| hasher.hash(n),
        ) {
            Entry::Occupied(entry) => entry,
            Entry::Vacant(entry) => {
                self.len += 1;
                entry.insert((name.clone(), make()))
            }
        };
        &mut entry.into_mut().1
    }

    /// Removes `name`, returning its value.
    pub(crate) fn remove(&mut self, name: &Name) -> Option<V> {
        let hash = self.hash(name);
        let shard = self.shard_of(hash);
        self.shards[shard].find(hash, |(n, _)| labels::same(n, name))?;
        let table = Arc::make_mut(&mut self.shards[shard]);
        let entry = table
            .find_entry(hash, |(n, _)| labels::same(n, name))
            .ok()?;
        let ((_, value), _) = entry.remove();
        self.len -= 1;
        self.shrink();
        Some(value)
    }

    /// Whether this index and `other` are copies of one index that still share a shard.
    pub(crate) fn shares_with(&self, other: &NameIndex<V>) -> bool {
        self.shards.len() == other.shards.len()
            && self
                .shards
                .iter()
                .zip(&other.shards)
                .any(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// The entries of the shards of this index that `other` does not share: every other
    /// entry is in `other` too, with the same value. All of them when the two are not
    /// copies of one index.
    pub(crate) fn unshared<'a>(
        &'a self,
        other: &'a NameIndex<V>,
    ) -> impl Iterator<Item = (&'a Name, &'a V)> + 'a {
        let copies = self.shards.len() == other.shards.len();
        self.shards
            .iter()
            .zip(other.shards.iter().map(Some).chain(std::iter::repeat(None)))
            .filter(move |(mine, theirs)| !(copies && theirs.is_some_and(|t| Arc::ptr_eq(mine, t))))
            .flat_map(|(shard, _)| shard.iter().map(|(n, v)| (n, v)))
    }

    /// The number of names.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The number of shards: the parts [`NameIndex::shard`] walks the index in.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The names of shard `i` with their values, in no particular order (the same for
    /// every walk of one index); none past the last shard.
    pub(crate) fn shard(&self, i: usize) -> impl Iterator<Item = (&Name, &V)> + '_ {
        self.shards
            .get(i)
            .into_iter()
            .flat_map(|shard| shard.iter().map(|(n, v)| (n, v)))
    }

    /// Every name with its value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Name, &V)> + '_ {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter().map(|(n, v)| (n, v)))
    }
}

/// How an index hashes names: consistent with hickory's `Eq` of [`Name`] (the same
/// labels, ASCII letters in either case, and the same fully-qualified flag hash the same).
///
/// A multiply-and-fold hash (the 128-bit product of two 64-bit words, its halves xored),
/// eight bytes of the lower-cased wire form at a time: a name of a zone costs a few dozen
/// instructions. It is not a cryptographic hash, which an index does not need from
/// whoever may choose its names — the operator's files, dynamic updates signed with a key
/// the configuration grants, transfers from the configured primaries — but its two keys
/// are drawn at random for each index (std's `RandomState`, seeded by the operating
/// system), so which names collide cannot be known outside the process, and a zone
/// written to fill one table slot does not do it twice.
#[derive(Debug, Clone)]
struct NameHasher {
    seed: u64,
    multiplier: u64,
}

/// An odd constant with its bits spread (the fractional part of π), the multiplier's
/// base: a multiplier of few bits set, or even, would mix less.
const SPREAD: u64 = 0x243f_6a88_85a3_08d3;

impl NameHasher {
    fn new() -> NameHasher {
        let keys = RandomState::new();
        NameHasher {
            seed: keys.hash_one(0u8),
            multiplier: keys.hash_one(1u8) | 1,
        }
    }

    /// The 128-bit product of `a` and `b`, its two halves xored: every bit of either
    /// operand reaches the middle bits of the result.
    fn fold(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn hash(&self, name: &Name) -> u64 {
        // The wire form, lower-cased: each label's length byte keeps "ab.c" and "a.bc"
        // apart. Hashed a word at a time, the last word zero-padded.
        let mut buf = [0u8; MAX_NAME];
        let wire = write_name_lower(name, &mut buf);
        let mut hash = self.seed ^ u64::from(name.is_fqdn()) ^ ((wire.len() as u64) << 1);
        let spread = self.multiplier ^ SPREAD;
        let words = wire.chunks_exact(8);
        let mut last = [0u8; 8];
        last[..words.remainder().len()].copy_from_slice(words.remainder());
        for word in words
            .map(|w| <[u8; 8]>::try_from(w).unwrap_or_default())
            .chain([last])
        {
            hash = NameHasher::fold(hash ^ u64::from_le_bytes(word), spread);
        }
        NameHasher::fold(hash ^ self.seed, SPREAD)
    }
}

/// The shard count for an index of about `names` names, and the capacity of each shard:
/// shards of the power-of-two number of slots at or above √names, enough of them to fill
/// each to about 80% (90% of what hashbrown fills a table to, 7/8), so that the changes of
/// dynamic updates find room.
fn layout(names: usize) -> (usize, usize) {
    let slots = names.isqrt().max(MIN_SLOTS).next_power_of_two();
    let capacity = slots / 8 * 7;
    let target = capacity * 9 / 10;
    let shards = names.div_ceil(target).clamp(1, MAX_SHARDS);
    if shards == 1 {
        return (1, names);
    }
    (shards, capacity.max(names.div_ceil(shards)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    #[test]
    fn shards_grow_as_the_square_root_and_fill_their_tables() {
        assert_eq!(layout(0), (1, 0));
        assert_eq!(layout(1), (1, 1));
        assert_eq!(layout(12), (1, 12));
        assert_eq!(layout(100), (9, 14));
        assert_eq!(layout(10_000), (100, 112));
        assert_eq!(layout(100_000), (249, 448));
        assert_eq!(layout(1_000_000), (1241, 896));
        assert_eq!(layout(100_000_000).0, 7751);
        for names in [100, 10_000, 100_000, 1_000_000, 3_000_000] {
            let (shards, capacity) = layout(names);
            let index = NameIndex::<()>::with_capacity(names);
            let slots = index.shards[0].capacity() * 8 / 7;
            let fill = names as f64 / (shards * slots) as f64;
            assert!((0.65..=0.875).contains(&fill), "{names}: {fill}");
            assert!(index.shards.iter().all(|s| s.capacity() >= capacity));
        }
    }

    #[test]
    fn a_change_copies_one_shard_and_leaves_the_original_alone() {
        let mut original = NameIndex::with_capacity(10_000);
        for i in 0..10_000 {
            original.insert(name(&format!("n{i}.example.com.")), i);
        }
        assert_eq!(original.len(), 10_000);
        let mut copy = original.clone();
        *copy.get_mut(&name("N5.Example.COM.")).expect("present") = -1;
        copy.insert(name("new.example.com."), 7);
        assert_eq!(copy.remove(&name("n6.example.com.")), Some(6));
        assert_eq!(copy.remove(&name("n6.example.com.")), None);
        assert!(copy.get_mut(&name("absent.example.com.")).is_none());

        assert_eq!(original.get(&name("n5.example.com.")), Some(&5));
        assert_eq!(original.get(&name("n6.example.com.")), Some(&6));
        assert!(!original.contains(&name("new.example.com.")));
        assert_eq!(copy.get(&name("n5.example.com.")), Some(&-1));
        assert_eq!(copy.get(&name("new.example.com.")), Some(&7));
        assert_eq!((original.len(), copy.len()), (10_000, 10_000));
        assert_eq!(copy.iter().count(), 10_000);

        // At most three shards (three names changed) are the copy's own; the other 97
        // are still the original's.
        let own = original
            .shards
            .iter()
            .zip(&copy.shards)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count();
        assert_eq!(original.shards.len(), 100);
        assert!((1..=3).contains(&own), "{own} shards copied");
        // What differs is found in those shards alone.
        let unshared: Vec<&Name> = copy.unshared(&original).map(|(n, _)| n).collect();
        assert!(unshared.len() < 3 * 200, "{}", unshared.len());
        assert!(unshared.contains(&&name("n5.example.com.")));
        assert!(unshared.contains(&&name("new.example.com.")));
        let gone: Vec<&Name> = original.unshared(&copy).map(|(n, _)| n).collect();
        assert!(gone.contains(&&name("n6.example.com.")));
        // Two indexes loaded apart share nothing.
        let apart = NameIndex::<i32>::with_capacity(10_000);
        assert_eq!(original.unshared(&apart).count(), 10_000);
    }

    /// The largest shard of `index`: what one change copies at most.
    fn largest_shard<V>(index: &NameIndex<V>) -> usize {
        index.shards.iter().map(|s| s.len()).max().unwrap_or(0)
    }

    #[test]
    fn an_index_grown_by_changes_is_laid_out_again_and_keeps_every_name() {
        // A zone loaded with three names, grown to 20,000 by updates: each a copy of the
        // index with one name added, as a dynamic update makes it.
        let mut index = NameIndex::with_capacity(3);
        let mut copies = Vec::new();
        for i in 0..20_000 {
            let mut next = index.clone();
            next.insert(name(&format!("n{i}.example.com.")), i);
            if i % 5_000 == 0 {
                copies.push((i, index.clone()));
            }
            index = next;
        }
        assert_eq!(index.len(), 20_000);
        assert_eq!(index.iter().count(), 20_000);
        for i in 0..20_000 {
            assert_eq!(
                index.get(&name(&format!("N{i}.example.COM."))),
                Some(&i),
                "n{i}"
            );
        }
        // Laid out as a load of at least half as many names would be: shards of about √n
        // names, not one of 20,000.
        assert!(index.sized_for * 2 >= index.len(), "{}", index.sized_for);
        let (shards, capacity) = layout(index.sized_for);
        assert_eq!(index.shards.len(), shards);
        assert!(shards > 50, "{shards}");
        assert!(
            largest_shard(&index) < 3 * capacity,
            "{}",
            largest_shard(&index)
        );
        // The copies taken on the way hold what they held, and only that.
        for (at, copy) in &copies {
            assert_eq!(copy.len(), *at);
            assert_eq!(copy.iter().count(), *at);
            assert!(!copy.contains(&name(&format!("n{at}.example.com."))));
            if *at > 0 {
                assert_eq!(
                    copy.get(&name(&format!("n{}.example.com.", at - 1))),
                    Some(&(at - 1))
                );
            }
        }
        // A change after the last layout still copies one shard.
        let mut next = index.clone();
        next.insert(name("new.example.com."), usize::MAX);
        let own = index
            .shards
            .iter()
            .zip(&next.shards)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count();
        assert_eq!(own, 1);

        // Emptied down to 100 names: fewer shards again, every name left still found.
        for i in 100..20_000 {
            assert_eq!(index.remove(&name(&format!("n{i}.example.com."))), Some(i));
        }
        assert_eq!((index.len(), index.iter().count()), (100, 100));
        assert!(
            index.shards.len() < 4 * layout(100).0,
            "{}",
            index.shards.len()
        );
        for i in 0..100 {
            assert_eq!(index.get(&name(&format!("n{i}.example.com."))), Some(&i));
        }
        assert!(!index.contains(&name("n100.example.com.")));
    }

    #[test]
    fn a_new_layout_shares_nothing_and_what_differs_is_every_name() {
        let mut index = NameIndex::with_capacity(3);
        for i in 0..16 {
            index.insert(name(&format!("n{i}.example.com.")), i);
        }
        assert_eq!(index.shards.len(), 1);
        let before = index.clone();
        // The 17th name is past what one shard is for: a new layout.
        index.insert(name("n16.example.com."), 16);
        assert!(index.shards.len() > 1);
        assert!(!index.shares_with(&before));
        assert_eq!(index.unshared(&before).count(), 17);
        assert_eq!(before.unshared(&index).count(), 16);
        // get_or_insert_with lays out too, and hands back the value in the new layout.
        let mut grown = NameIndex::with_capacity(0);
        for i in 0..1_000 {
            *grown.get_or_insert_with(&name(&format!("n{i}.example.com.")), || i) += 1;
        }
        assert!(grown.shards.len() > 1);
        assert!(
            (0..1_000).all(|i| grown.get(&name(&format!("n{i}.example.com."))) == Some(&(i + 1)))
        );
    }

    #[test]
    fn names_equal_as_hickory_compares_them_hash_the_same() {
        let hasher = NameHasher::new();
        let same = [
            ("www.example.com.", "WWW.Example.COM."),
            ("a-1.b_2.example.", "A-1.B_2.EXAMPLE."),
            (".", "."),
        ];
        for (a, b) in same {
            assert_eq!(name(a), name(b));
            assert_eq!(hasher.hash(&name(a)), hasher.hash(&name(b)), "{a} {b}");
        }
        // What hickory tells apart: labels cut elsewhere, a relative name, other bytes
        // that lower-case alike only in Unicode, a name just past 8 bytes.
        let apart = [
            ("ab.c.", "a.bc."),
            ("www.example.com.", "www.example.com"),
            ("h1.example.com.", "h2.example.com."),
            ("abcdefg.", "abcdefgh."),
            ("abcdefgh.", "abcdefgh.a."),
        ];
        for (a, b) in apart {
            assert_ne!(name(a), name(b));
            assert_ne!(hasher.hash(&name(a)), hasher.hash(&name(b)), "{a} {b}");
        }
        // The longest name there is (255 bytes in wire form) is hashed whole.
        let longest = format!("{}.{}.", vec!["A".repeat(63); 3].join("."), "b".repeat(61));
        let shorter = format!("{}.{}.", vec!["a".repeat(63); 3].join("."), "b".repeat(60));
        assert_eq!(
            hasher.hash(&name(&longest)),
            hasher.hash(&name(&longest.to_lowercase()))
        );
        assert_ne!(hasher.hash(&name(&longest)), hasher.hash(&name(&shorter)));
        // Two indexes draw different keys.
        assert_ne!(
            NameHasher::new().hash(&name("a.")),
            NameHasher::new().hash(&name("a."))
        );
    }

    #[test]
    fn names_of_a_zone_spread_over_shards_and_slots() {
        // A zone's names differ in a few bytes: the bits the shard is taken from and those
        // a table places an entry by (the low ones) and tags it with (the top seven) are
        // each about uniform over 100,000 of them.
        let hasher = NameHasher::new();
        let hashes: Vec<u64> = (0..100_000)
            .map(|i| hasher.hash(&name(&format!("h{i}.example.com."))))
            .collect();
        for (what, bits) in [
            (
                "slot",
                Box::new(|h: u64| h & 1023) as Box<dyn Fn(u64) -> u64>,
            ),
            ("shard", Box::new(|h: u64| (h >> SHARD_BITS_AT) & 1023)),
            ("tag", Box::new(|h: u64| h >> 57)),
        ] {
            let buckets = if what == "tag" { 128 } else { 1024 };
            let mut counts = vec![0u32; buckets];
            for h in &hashes {
                counts[bits(*h) as usize] += 1;
            }
            let expected = hashes.len() as f64 / buckets as f64;
            let chi2: f64 = counts
                .iter()
                .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                .sum();
            // Uniform counts give about `buckets - 1`, give or take the square root of
            // twice that: six times that much above is a hash that does not spread (one
            // run in some hundreds of millions of good ones), where a bad one is far off.
            let freedom = (buckets - 1) as f64;
            let bound = freedom + 6.0 * (2.0 * freedom).sqrt();
            assert!(chi2 < bound, "{what}: chi2 {chi2} over {bound}");
        }
    }

    #[test]
    fn get_or_insert_with_inserts_once() {
        let mut index = NameIndex::with_capacity(0);
        *index.get_or_insert_with(&name("a."), || 1) += 10;
        *index.get_or_insert_with(&name("A."), || 100) += 10;
        assert_eq!(index.get(&name("a.")), Some(&21));
        assert_eq!(index.len(), 1);
    }
}
