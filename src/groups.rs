//! Grouping of long tables without sorting, joins or string hashing: runs of equal
//! (sorted) dates, and dense codes for labels given as Enum/Categorical codes or as
//! 64-bit hashes of any other label.

use std::ops::Range;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{at_row, Result};
use crate::views::StringViews;

/// Rows per parallel chunk of the scans below.
const CHUNK: usize = 1 << 16;

/// Codes below this are looked up in a table instead of a hash map.
const DIRECT_LIMIT: u64 = 1 << 20;

/// A label column: Enum/Categorical physical codes, or hashes of other labels.
#[derive(Clone, Copy, Debug)]
pub enum Keys<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    /// String labels, hashed row by row (see `views`).
    Views(&'a StringViews),
}

impl Keys<'_> {
    pub fn len(&self) -> usize {
        match self {
            Keys::U8(k) => k.len(),
            Keys::U16(k) => k.len(),
            Keys::U32(k) => k.len(),
            Keys::U64(k) => k.len(),
            Keys::Views(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline(always)]
    pub fn get(&self, row: usize) -> u64 {
        match self {
            Keys::U8(k) => u64::from(k[row]),
            Keys::U16(k) => u64::from(k[row]),
            Keys::U32(k) => u64::from(k[row]),
            Keys::U64(k) => k[row],
            Keys::Views(v) => v.key(row),
        }
    }

    /// A word equal for two rows only if their labels are equal (see `StringViews`).
    #[inline(always)]
    pub fn identity(&self, row: usize) -> u128 {
        match self {
            Keys::Views(v) => v.identity(row),
            _ => u128::from(self.get(row)),
        }
    }

    /// Appends the keys of `rows` as u32 (for keys known to be small codes).
    pub fn widen(&self, rows: Range<usize>, out: &mut Vec<u32>) {
        match self {
            Keys::U8(k) => out.extend(k[rows].iter().map(|&x| u32::from(x))),
            Keys::U16(k) => out.extend(k[rows].iter().map(|&x| u32::from(x))),
            Keys::U32(k) => out.extend_from_slice(&k[rows]),
            Keys::U64(k) => out.extend(k[rows].iter().map(|&x| x as u32)),
            Keys::Views(_) => unreachable!("string keys are hashes, never small codes"),
        }
    }

    /// The largest key (0 when empty).
    pub fn max(&self) -> u64 {
        match self {
            Keys::U8(k) => k.par_iter().copied().max().map_or(0, u64::from),
            Keys::U16(k) => k.par_iter().copied().max().map_or(0, u64::from),
            Keys::U32(k) => k.par_iter().copied().max().map_or(0, u64::from),
            Keys::U64(k) => k.par_iter().copied().max().unwrap_or(0),
            Keys::Views(_) => u64::MAX, // hashes: never small codes
        }
    }
}

/// Start of every run of equal dates, then `dates.len()`; `None` if the dates decrease
/// somewhere (the caller sorts first). Empty input gives `[0]`: no runs.
pub fn date_runs<T: Ord + Copy + Sync>(dates: &[T]) -> Option<Vec<usize>> {
    let n = dates.len();
    let chunks: Vec<Option<Vec<usize>>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut starts = Vec::new();
            for i in (c * CHUNK).max(1)..((c + 1) * CHUNK).min(n) {
                if dates[i] != dates[i - 1] {
                    if dates[i] < dates[i - 1] {
                        return None;
                    }
                    starts.push(i);
                }
            }
            Some(starts)
        })
        .collect();
    let mut starts = vec![0];
    for chunk in chunks {
        starts.extend(chunk?);
    }
    if n > 0 {
        starts.push(n);
    }
    Some(starts)
}

/// The distinct labels of a column, coded 0, 1, ... in order of first appearance.
/// One sequential pass: it codes effect tables, which have a row per (date, sector).
pub struct Distinct {
    codes: FxHashMap<u64, u32>,
    /// The first row holding each code (the Python layer reads the label there).
    pub first_rows: Vec<usize>,
}

impl Distinct {
    pub fn of(keys: Keys<'_>) -> Distinct {
        let mut codes = FxHashMap::default();
        let mut first_rows = Vec::new();
        for row in 0..keys.len() {
            codes.entry(keys.get(row)).or_insert_with(|| {
                first_rows.push(row);
                (first_rows.len() - 1) as u32
            });
        }
        Distinct { codes, first_rows }
    }

    pub fn len(&self) -> usize {
        self.first_rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first_rows.is_empty()
    }

    /// The code of a key that occurs in the column this was built from.
    #[inline(always)]
    pub fn code(&self, key: u64) -> usize {
        self.codes[&key] as usize
    }
}

/// Maps the keys of one group of rows (one date) to slots 0, 1, ... in order of first
/// appearance. Stamps mark which entries belong to the current group, so moving to
/// the next group costs nothing. Small codes index a table of stamps; other keys probe
/// an open-addressing table that grows with the number of distinct keys per group.
pub struct GroupTable {
    epoch: u32,
    len: u32,
    /// Direct mode: one (stamp, slot) per code.
    direct: Option<Vec<(u32, u32)>>,
    /// Probing mode: (key, stamp, slot) per entry, a power of two of them.
    entries: Vec<(u64, u32, u32)>,
    /// Uniqueness checks of probed keys: (fingerprint, stamp), 8 bytes an entry.
    marks: Vec<(u32, u32)>,
}

impl GroupTable {
    /// A table for keys up to `max` (see `Keys::max`): direct when they are small codes.
    pub fn new(max: u64) -> GroupTable {
        GroupTable {
            epoch: 0,
            len: 0,
            direct: (max < DIRECT_LIMIT).then(|| vec![(0, 0); max as usize + 1]),
            entries: vec![(0, 0, 0); 16],
            marks: Vec::new(),
        }
    }

    /// Starts a new group.
    pub fn start(&mut self) {
        if self.epoch == u32::MAX {
            self.direct.iter_mut().flatten().for_each(|e| e.0 = 0);
            self.entries.iter_mut().for_each(|e| e.1 = 0);
            self.marks.iter_mut().for_each(|e| e.1 = 0);
            self.epoch = 0;
        }
        self.epoch += 1;
        self.len = 0;
    }

    /// Distinct keys in the current group so far.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn probe(&self, key: u64) -> usize {
        let mask = self.entries.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
        while self.entries[i].1 == self.epoch && self.entries[i].0 != key {
            i = (i + 1) & mask;
        }
        i
    }

    /// Doubles the probing table (kept at most 1/8 full, so probes rarely collide),
    /// keeping the current group's entries.
    #[cold]
    fn grow(&mut self) {
        let size = 2 * self.entries.len();
        let old = std::mem::replace(&mut self.entries, vec![(0, 0, 0); size]);
        for entry in old.into_iter().filter(|e| e.1 == self.epoch) {
            let i = self.probe(entry.0);
            self.entries[i] = entry;
        }
    }

    /// The slot of `key` in the current group and whether it was new.
    #[inline(always)]
    pub fn slot(&mut self, key: u64) -> (usize, bool) {
        let epoch = self.epoch;
        match self.direct.as_mut() {
            Some(table) => {
                let (stamp, slot) = &mut table[key as usize];
                if *stamp == epoch {
                    return (*slot as usize, false);
                }
                (*stamp, *slot) = (epoch, self.len);
            }
            None => {
                if 8 * (self.len as usize + 1) > self.entries.len() {
                    self.grow();
                }
                let i = self.probe(key);
                let (k, stamp, slot) = &mut self.entries[i];
                if *stamp == epoch {
                    return (*slot as usize, false);
                }
                (*k, *stamp, *slot) = (key, epoch, self.len);
            }
        }
        self.len += 1;
        (self.len as usize - 1, true)
    }

    /// The position of the first key that repeats an earlier one (after `start`).
    pub fn first_repeat(&mut self, keys: &[u64]) -> Option<usize> {
        let epoch = self.epoch;
        if let Some(table) = self.direct.as_mut() {
            return keys.iter().position(|&code| {
                let stamp = &mut table[code as usize].0;
                std::mem::replace(stamp, epoch) == epoch
            });
        }
        // A compact table of 32-bit fingerprints; a fingerprint seen before is
        // confirmed against the keys themselves.
        let size = (2 * keys.len()).next_power_of_two().max(16);
        if self.marks.len() < size {
            self.marks = vec![(0, 0); size];
        }
        let mask = self.marks.len() - 1;
        for (at, &key) in keys.iter().enumerate() {
            let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let fingerprint = mixed as u32;
            let mut i = (mixed >> 32) as usize & mask;
            while self.marks[i].1 == epoch {
                if self.marks[i].0 == fingerprint && keys[..at].contains(&key) {
                    return Some(at);
                }
                i = (i + 1) & mask;
            }
            self.marks[i] = (fingerprint, epoch);
        }
        None
    }
}

/// The first row whose key repeats an earlier key of the same date run, if any.
pub fn first_repeat(date_starts: &[usize], keys: Keys<'_>, what: &str) -> Result<()> {
    let max = keys.max();
    date_starts
        .par_windows(2)
        .map_init(
            || (GroupTable::new(max), Vec::new()),
            |(table, run_keys), run| {
                table.start();
                run_keys.clear();
                run_keys.extend((run[0]..run[1]).map(|row| keys.get(row)));
                match table.first_repeat(run_keys) {
                    Some(i) => Err(repeated(run[0] + i, what)),
                    None => Ok(()),
                }
            },
        )
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

pub(crate) fn repeated(row: usize, what: &str) -> crate::Error {
    at_row(row, format!("{what} appears twice on this date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_sorted_dates() {
        assert_eq!(date_runs(&[3, 3, 5, 7, 7, 7]), Some(vec![0, 2, 3, 6]));
        assert_eq!(date_runs::<i32>(&[]), Some(vec![0]));
        assert_eq!(date_runs(&[3, 5, 4]), None);
        let long: Vec<i64> = (0..200_000).map(|i| i / 3).collect();
        let runs = date_runs(&long).unwrap();
        assert_eq!(runs.len(), 200_000_usize.div_ceil(3) + 1);
        assert!(runs
            .windows(2)
            .all(|w| long[w[0]] != long[w[1] - 1] || w[1] - w[0] <= 3));
    }

    #[test]
    fn codes_follow_first_appearance() {
        for keys in [
            Keys::U32(&[7, 2, 7, 9, 2][..]),
            Keys::U64(&[u64::MAX - 7, 2, u64::MAX - 7, 9, 2][..]),
        ] {
            let distinct = Distinct::of(keys);
            assert_eq!(distinct.first_rows, vec![0, 1, 3]);
            let codes: Vec<usize> = (0..5).map(|r| distinct.code(keys.get(r))).collect();
            assert_eq!(codes, vec![0, 1, 0, 2, 1]);
        }
    }

    #[test]
    fn codes_across_chunks() {
        let keys: Vec<u64> = (0..3 * CHUNK as u64 + 5)
            .map(|i| (i * 7919) % 1000 + (1 << 40))
            .collect();
        let distinct = Distinct::of(Keys::U64(&keys));
        assert_eq!(distinct.len(), 1000);
        for (code, &row) in distinct.first_rows.iter().enumerate() {
            assert_eq!(distinct.code(keys[row]), code);
            assert!(keys[..row].iter().all(|&k| k != keys[row]));
        }
    }

    #[test]
    fn repeats_inside_a_date_are_found() {
        let keys = [1u32, 2, 1, 3, 2, 1];
        assert!(first_repeat(&[0, 2, 4, 6], Keys::U32(&keys), "asset").is_ok());
        let err = first_repeat(&[0, 3, 6], Keys::U32(&keys), "asset").unwrap_err();
        assert_eq!(err, at_row(2, "asset appears twice on this date"));
    }
}
