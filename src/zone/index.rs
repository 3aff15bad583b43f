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
//! This module owns only that structure: it knows nothing of DNS beyond names being
//! case-insensitive keys (hickory's `Hash` and `Eq` of [`Name`]). What a value is and what
//! a view keeps in it is [`super::tree`]'s.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use hickory_proto::rr::Name;

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
    hasher: RandomState,
    shards: Vec<Arc<HashTable<(Name, V)>>>,
    len: usize,
}

impl<V: Clone> NameIndex<V> {
    /// An empty index sized for about `names` names: the shard count is fixed here, so an
    /// index that grows much past it has larger shards, and copies more per change.
    pub(crate) fn with_capacity(names: usize) -> NameIndex<V> {
        let (shards, per_shard) = layout(names);
        NameIndex {
            hasher: RandomState::new(),
            shards: (0..shards)
                .map(|_| Arc::new(HashTable::with_capacity(per_shard)))
                .collect(),
            len: 0,
        }
    }

    fn hash(&self, name: &Name) -> u64 {
        self.hasher.hash_one(name)
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
        let mut index = NameIndex::with_capacity(self.len);
        for (name, value) in self.iter() {
            index.insert(name.clone(), value.clone());
        }
        index
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
            .find(hash, |(n, _)| n == name)
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
        self.shards[shard].find(hash, |(n, _)| n == name)?;
        Arc::make_mut(&mut self.shards[shard])
            .find_mut(hash, |(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Sets the value of `name`, returning the one it replaces.
    pub(crate) fn insert(&mut self, name: Name, value: V) -> Option<V> {
        let hash = self.hash(&name);
        let shard = self.shard_of(hash);
        let hasher = &self.hasher;
        let table = Arc::make_mut(&mut self.shards[shard]);
        match table.find_mut(hash, |(n, _)| *n == name) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                table.insert_unique(hash, (name, value), |(n, _)| hasher.hash_one(n));
                self.len += 1;
                None
            }
        }
    }

    /// The value of `name`, inserting `make()`'s first when it has none.
    pub(crate) fn get_or_insert_with(&mut self, name: &Name, make: impl FnOnce() -> V) -> &mut V {
        let hash = self.hash(name);
        let shard = self.shard_of(hash);
        let hasher = &self.hasher;
        let table = Arc::make_mut(&mut self.shards[shard]);
        let entry = match table.entry(hash, |(n, _)| n == name, |(n, _)| hasher.hash_one(n)) {
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
        self.shards[shard].find(hash, |(n, _)| n == name)?;
        let table = Arc::make_mut(&mut self.shards[shard]);
        let entry = table.find_entry(hash, |(n, _)| n == name).ok()?;
        let ((_, value), _) = entry.remove();
        self.len -= 1;
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

    /// Every name with its value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Name, &V)> + '_ {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter().map(|(n, v)| (n, v)))
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

    #[test]
    fn get_or_insert_with_inserts_once() {
        let mut index = NameIndex::with_capacity(0);
        *index.get_or_insert_with(&name("a."), || 1) += 10;
        *index.get_or_insert_with(&name("A."), || 100) += 10;
        assert_eq!(index.get(&name("a.")), Some(&21));
        assert_eq!(index.len(), 1);
    }
}
