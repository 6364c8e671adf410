//! Single-period Brinson attribution in one pass over a long table.
//!
//! Rows come grouped by date (runs of equal dates). Each date is reduced on its own:
//! per sector Σw, Σw·r and Σ|w| for both sides accumulate in a small dense array
//! indexed by the sector code, then the effects follow from those sums. Dates are
//! independent, so they run in parallel, and every sum is taken in row order.

use rayon::prelude::*;

use crate::error::{at_row, in_range, invalid, range_error, try_filled, Result};
use crate::interrupt::Interrupt;
use rustc_hash::FxHashMap;

use crate::groups::{repeated, GroupTable, Keys};

/// How the active return of a period is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrinsonMethod {
    /// Brinson-Fachler: allocation measured against the benchmark total return.
    Fachler,
    /// Brinson-Hood-Beebower.
    HoodBeebower,
    /// Bacon's geometric attribution (no interaction; the effects compound).
    Geometric,
}

/// Weights and returns of one side (portfolio or benchmark). For holdings-level
/// input both sides share the asset return column.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub weight: &'a [f64],
    pub ret: &'a [f64],
    /// Names for error messages: `("wp", "rp")` or `("wb", "rb")`.
    pub names: (&'static str, &'static str),
}

pub struct BrinsonInput<'a> {
    /// Start of each date's rows, then the row count (see `groups::date_runs`).
    pub date_starts: &'a [usize],
    pub sectors: Keys<'a>,
    /// Holdings-level input: the asset of each row, which must not repeat on a date.
    /// `None` for sector-level input, where the sector must not repeat instead.
    pub assets: Option<Keys<'a>>,
    pub portfolio: Side<'a>,
    pub benchmark: Side<'a>,
}

#[derive(Clone, Copy, Debug)]
pub struct BrinsonOptions {
    pub method: BrinsonMethod,
    /// Fold interaction into selection (two effects).
    pub top_down: bool,
}

/// One (date, sector) cell of the result.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SectorCell {
    /// Input rows in the cell; 0 means the sector is absent on that date.
    pub rows: u32,
    pub wp: f64,
    pub wb: f64,
    /// Sector returns after the one-sided rule; NaN when both weights are zero.
    pub rp: f64,
    pub rb: f64,
    pub allocation: f64,
    pub selection: f64,
    pub interaction: f64,
}

/// Effects for every (date, sector) pair, date-major (`cells[date * n_sectors + code]`).
pub struct SectorEffects {
    pub n_sectors: usize,
    /// First input row of each sector code, in code order (order of first appearance).
    pub sector_rows: Vec<usize>,
    pub cells: Vec<SectorCell>,
}

/// Net weight below this fraction of the gross weight counts as zero (rounding).
const NET_ZERO: f64 = 1e-12;

#[derive(Clone, Copy, Default)]
struct Sums {
    weight: f64,
    contribution: f64,
    gross: f64,
}

impl Sums {
    /// The side's sector return, NaN when it holds nothing there (no weight, or
    /// holdings that net to zero weight and zero contribution).
    fn ret(&self, name: &str, row: impl Fn() -> usize) -> Result<f64> {
        let tiny = NET_ZERO * self.gross;
        if self.gross == 0.0 || (self.weight.abs() <= tiny && self.contribution.abs() <= tiny) {
            Ok(f64::NAN)
        } else if self.weight.abs() <= tiny {
            Err(at_row(
                row(),
                format!(
                    "the {name} holdings of this sector net to zero weight but not to zero \
                     contribution, so its {name} return is undefined"
                ),
            ))
        } else {
            Ok(self.contribution / self.weight)
        }
    }
}

/// The error of a row that `scan` flagged, if it has one.
fn check(side: &Side<'_>, row: usize) -> Result<()> {
    let (w, r) = (side.weight[row], side.ret[row]);
    let (weight, ret) = side.names;
    if w.is_nan() {
        Err(at_row(row, format!("{weight} (weight) is missing")))
    } else if let Some(error) = range_error(w, weight, row, 0) {
        Err(error)
    } else if let Some(error) = range_error(r, ret, row, 0) {
        Err(error)
    } else if w != 0.0 && r.is_nan() {
        Err(at_row(
            row,
            format!("{ret} (return) is missing under a non-zero {weight} weight"),
        ))
    } else {
        Ok(())
    }
}

#[derive(Clone, Copy, Default)]
struct Cell {
    rows: u32,
    slot: usize,
    portfolio: Sums,
    benchmark: Sums,
}

/// One date's sectors: their keys and effects.
struct DateCells {
    keys: Vec<u64>,
    cells: Vec<SectorCell>,
}

/// Sector keys below this are slots themselves; larger keys go through a table.
const DIRECT_SECTORS: u64 = 1 << 10;

/// Per-sector sums of one date, one array per quantity (tight scatter-adds).
#[derive(Default)]
struct DateSums {
    rows: Vec<u32>,
    wp: Vec<f64>,
    cp: Vec<f64>,
    gp: Vec<f64>,
    wb: Vec<f64>,
    cb: Vec<f64>,
    gb: Vec<f64>,
}

impl DateSums {
    fn sums(&mut self) -> [&mut Vec<f64>; 6] {
        [
            &mut self.wp,
            &mut self.cp,
            &mut self.gp,
            &mut self.wb,
            &mut self.cb,
            &mut self.gb,
        ]
    }

    fn ensure(&mut self, slots: usize) {
        if self.rows.len() < slots {
            self.rows.resize(slots, 0);
            self.sums().into_iter().for_each(|v| v.resize(slots, 0.0));
        }
    }

    fn clear(&mut self, slot: usize) {
        self.rows[slot] = 0;
        self.sums().into_iter().for_each(|v| v[slot] = 0.0);
    }
}

/// Whether a side has rows that need a closer look (a missing weight, a weight or
/// return infinite or out of range, a missing return under a non-zero weight), and any
/// missing return.
fn scan(side: &Side<'_>, rows: std::ops::Range<usize>) -> (bool, bool) {
    let (weights, returns) = (&side.weight[rows.clone()], &side.ret[rows]);
    weights
        .iter()
        .zip(returns)
        .fold((false, false), |(bad, nan), (&w, &r)| {
            let bad_row = w.is_nan() | !in_range(w) | !in_range(r) | ((w != 0.0) & r.is_nan());
            (bad | bad_row, nan | r.is_nan())
        })
}

/// Per-thread scratch for one date at a time.
struct Scratch {
    /// Slots for sector keys that are not small codes.
    sector_table: Option<GroupTable>,
    assets: Option<GroupTable>,
    /// Sector slot of each row of the date.
    slots: Vec<u32>,
    /// Key of each slot (table mode).
    slot_keys: Vec<u64>,
    sector_keys: Repeats,
    asset_keys: Repeats,
    sums: DateSums,
}

/// The keys of one date's rows, and those of the last date that passed the same step:
/// a date whose keys repeat them exactly reuses that step's result. Holdings usually
/// list the same assets in the same order date after date, so comparing two
/// sequences replaces most hash-table probes.
#[derive(Default)]
struct Repeats {
    /// Identities of the labels (see `Keys::identity`): the cheap comparison.
    current: Vec<u128>,
    passed: Vec<u128>,
    /// Keys (hashes) of the labels, read when the identities differ (the same long
    /// strings stored twice have different identities but equal keys).
    keys: Vec<u64>,
    passed_keys: Vec<u64>,
}

impl Repeats {
    /// Reads the labels of `rows`; true when they repeat the last date that passed.
    fn read(&mut self, keys: Keys<'_>, rows: std::ops::Range<usize>) -> bool {
        self.current.clear();
        self.current
            .extend(rows.clone().map(|row| keys.identity(row)));
        if !self.passed.is_empty() && self.current == self.passed {
            return true;
        }
        self.keys.clear();
        self.keys.extend(rows.map(|row| keys.get(row)));
        if !self.passed_keys.is_empty() && self.keys == self.passed_keys {
            std::mem::swap(&mut self.current, &mut self.passed);
            return true;
        }
        false
    }

    fn passed(&mut self) {
        std::mem::swap(&mut self.current, &mut self.passed);
        std::mem::swap(&mut self.keys, &mut self.passed_keys);
    }
}

/// The effects of every date and sector. Once `interrupt` is set the call stops at the
/// next date or sector with [`Error::Interrupted`].
pub fn brinson(
    input: &BrinsonInput<'_>,
    options: BrinsonOptions,
    interrupt: &Interrupt,
) -> Result<SectorEffects> {
    let n_rows = input.sectors.len();
    let sides = [input.portfolio, input.benchmark];
    if sides
        .iter()
        .any(|s| s.weight.len() != n_rows || s.ret.len() != n_rows)
        || input.assets.is_some_and(|a| a.len() != n_rows)
        || input.date_starts.last() != Some(&n_rows)
    {
        return Err(invalid("brinson: columns of different lengths"));
    }
    let max_sector = input.sectors.max();
    let max_asset = input.assets.map(|a| a.max());
    let per_date: Vec<Result<DateCells>> = input
        .date_starts
        .par_windows(2)
        .with_min_len(4) // fewer scratch buffers
        .map_init(
            || Scratch {
                sector_table: (max_sector >= DIRECT_SECTORS).then(|| GroupTable::new(max_sector)),
                assets: max_asset.map(GroupTable::new),
                slots: Vec::new(),
                slot_keys: Vec::new(),
                sector_keys: Repeats::default(),
                asset_keys: Repeats::default(),
                sums: DateSums::default(),
            },
            |scratch, run| {
                interrupt.check()?;
                reduce_date(input, run[0]..run[1], scratch, max_sector, options)
            },
        )
        .collect();
    if interrupt.is_set() {
        // Millions of dates' small buffers: freed on every core, the user is waiting.
        per_date.into_par_iter().for_each(drop);
        return Err(crate::Error::Interrupted);
    }
    // Codes in order of first appearance over the whole table, then a dense grid.
    let mut codes: FxHashMap<u64, usize> = FxHashMap::default();
    let mut sector_rows = Vec::new();
    let mut dates = Vec::with_capacity(per_date.len());
    for (d, date) in per_date.into_iter().enumerate() {
        let date = date?;
        let known = sector_rows.len();
        for key in &date.keys {
            // Per sector: a date can hold a great many.
            interrupt.check()?;
            codes.entry(*key).or_insert_with(|| {
                sector_rows.push(usize::MAX);
                sector_rows.len() - 1
            });
        }
        if sector_rows.len() > known {
            let run = input.date_starts[d]..input.date_starts[d + 1];
            first_rows(input, run, &codes, &mut sector_rows[known..], known);
        }
        dates.push(date);
    }
    let n_sectors = sector_rows.len();
    // Dense (date x sector): far larger than the input when sectors come and go.
    let grid = dates.len().saturating_mul(n_sectors);
    let mut cells = try_filled(
        grid,
        SectorCell::default(),
        "brinson's (date x sector) cells",
    )?;
    for (d, date) in dates.iter().enumerate() {
        if interrupt.is_set() {
            dates.into_par_iter().for_each(drop);
            return Err(crate::Error::Interrupted);
        }
        for (key, cell) in date.keys.iter().zip(&date.cells) {
            // Each input in range, their products and ratios need not be.
            let values = [cell.wp, cell.wb, cell.rp, cell.rb];
            let effects = [cell.allocation, cell.selection, cell.interaction];
            if values.iter().chain(&effects).any(|v| v.is_infinite()) {
                return Err(at_row(
                    input.date_starts[d],
                    "the sector returns or effects of this date would exceed 1e308 \
                     (weights times returns, or returns over tiny weights): rescale them",
                ));
            }
            cells[d * n_sectors + codes[key]] = *cell;
        }
    }
    Ok(SectorEffects {
        n_sectors,
        sector_rows,
        cells,
    })
}

/// Fills `first` (the codes from `offset` on, new on this date) with the first row of
/// `rows` that holds each of them, in one pass over the date. Searching the date once
/// per new sector instead made a date with many sectors quadratic (100k sectors: 11 s).
fn first_rows(
    input: &BrinsonInput<'_>,
    rows: std::ops::Range<usize>,
    codes: &FxHashMap<u64, usize>,
    first: &mut [usize],
    offset: usize,
) {
    let start = rows.start;
    let mut pending = first.len();
    for row in rows {
        if let Some(&code) = codes.get(&input.sectors.get(row)) {
            if code >= offset && first[code - offset] == usize::MAX {
                first[code - offset] = row;
                pending -= 1;
                if pending == 0 {
                    return;
                }
            }
        }
    }
    // Every key of the date comes from one of its rows; this only guards the index.
    first
        .iter_mut()
        .filter(|r| **r == usize::MAX)
        .for_each(|r| *r = start);
}

/// Sums the rows of one date per sector, checks them and forms the effects.
///
/// Tight loops, each with one job: sector slots, the uniqueness check, a scan for rows
/// that need a closer look (only a flag; a slow pass names them), then scatter-adds.
fn reduce_date(
    input: &BrinsonInput<'_>,
    rows: std::ops::Range<usize>,
    scratch: &mut Scratch,
    max_sector: u64,
    options: BrinsonOptions,
) -> Result<DateCells> {
    let Scratch {
        sector_table,
        assets,
        slots,
        slot_keys,
        sector_keys,
        asset_keys,
        sums,
    } = scratch;
    let n_slots = match sector_table.as_mut() {
        Some(table) => {
            // `slots` and `slot_keys` still hold the last date that passed this step.
            if !sector_keys.read(input.sectors, rows.clone()) {
                table.start();
                slots.clear();
                slot_keys.clear();
                for &key in &sector_keys.keys {
                    let (slot, new) = table.slot(key);
                    if new {
                        slot_keys.push(key);
                    }
                    slots.push(slot as u32);
                }
                sector_keys.passed();
            }
            slot_keys.len()
        }
        None => {
            slots.clear();
            input.sectors.widen(rows.clone(), slots);
            max_sector as usize + 1
        }
    };
    if let (Some(table), Some(column)) = (assets.as_mut(), input.assets) {
        if !asset_keys.read(column, rows.clone()) {
            table.start();
            if let Some(i) = table.first_repeat(&asset_keys.keys) {
                return Err(repeated(rows.start + i, "asset"));
            }
            asset_keys.passed();
        }
    }
    let (bad_p, nan_p) = scan(&input.portfolio, rows.clone());
    let (bad_b, nan_b) = scan(&input.benchmark, rows.clone());
    if bad_p || bad_b {
        for row in rows.clone() {
            check(&input.portfolio, row)?;
            check(&input.benchmark, row)?;
        }
    }
    sums.ensure(n_slots);
    if nan_p || nan_b {
        accumulate::<true>(input, rows.clone(), slots, sums);
    } else {
        accumulate::<false>(input, rows.clone(), slots, sums);
    }
    let present: Vec<usize> = match sector_table {
        Some(_) => (0..n_slots).collect(),
        None => (0..n_slots).filter(|&s| sums.rows[s] > 0).collect(),
    };
    let result = finish_date(input, rows, slots, sums, &present, options);
    for &s in &present {
        sums.clear(s);
    }
    let keys = match sector_table {
        Some(_) => slot_keys.clone(),
        None => present.iter().map(|&s| s as u64).collect(),
    };
    result.map(|cells| DateCells { keys, cells })
}

/// Adds every row of the date to the sums of its sector. `MASKED`: some return is
/// missing, so the contributions of zero weights are forced to 0 (0 · NaN is NaN).
#[inline(always)]
fn accumulate<const MASKED: bool>(
    input: &BrinsonInput<'_>,
    rows: std::ops::Range<usize>,
    slots: &[u32],
    sums: &mut DateSums,
) {
    let (p, b) = (&input.portfolio, &input.benchmark);
    let product = |w: f64, r: f64| if MASKED && w == 0.0 { 0.0 } else { w * r };
    let (wp, rp) = (&p.weight[rows.clone()], &p.ret[rows.clone()]);
    let (wb, rb) = (&b.weight[rows.clone()], &b.ret[rows]);
    // Slices of one length, so that one comparison covers every index below.
    let n = sums.rows.len();
    let counts = &mut sums.rows[..n];
    let (swp, scp, sgp) = (&mut sums.wp[..n], &mut sums.cp[..n], &mut sums.gp[..n]);
    let (swb, scb, sgb) = (&mut sums.wb[..n], &mut sums.cb[..n], &mut sums.gb[..n]);
    let len = slots.len();
    let (wp, rp, wb, rb) = (&wp[..len], &rp[..len], &wb[..len], &rb[..len]);
    for i in 0..len {
        let s = slots[i] as usize;
        if s >= n {
            continue;
        }
        counts[s] += 1;
        swp[s] += wp[i];
        scp[s] += product(wp[i], rp[i]);
        sgp[s] += wp[i].abs();
        swb[s] += wb[i];
        scb[s] += product(wb[i], rb[i]);
        sgb[s] += wb[i].abs();
    }
}

/// Checks a date's sums and forms its effects, one cell per present slot.
fn finish_date(
    input: &BrinsonInput<'_>,
    rows: std::ops::Range<usize>,
    slots: &[u32],
    sums: &DateSums,
    present: &[usize],
    options: BrinsonOptions,
) -> Result<Vec<SectorCell>> {
    // The `nth` row of the date in slot `s`, to name in an error.
    let row_of = |s: usize, nth: usize| {
        let mut positions = (0..slots.len()).filter(|&i| slots[i] as usize == s);
        let i = positions.nth(nth).unwrap_or(0);
        rows.start + i
    };
    let date_sums: Vec<Cell> = present
        .iter()
        .map(|&s| Cell {
            rows: sums.rows[s],
            slot: s,
            portfolio: Sums {
                weight: sums.wp[s],
                contribution: sums.cp[s],
                gross: sums.gp[s],
            },
            benchmark: Sums {
                weight: sums.wb[s],
                contribution: sums.cb[s],
                gross: sums.gb[s],
            },
        })
        .collect();
    if input.assets.is_none() {
        if let Some(cell) = date_sums.iter().find(|c| c.rows > 1) {
            return Err(repeated(row_of(cell.slot, 1), "sector"));
        }
    }
    let mut cells = vec![SectorCell::default(); present.len()];
    effects(&date_sums, &mut cells, options, |s| row_of(s, 0))?;
    Ok(cells)
}

/// The effects of one date from its per-sector sums.
fn effects(
    sums: &[Cell],
    out: &mut [SectorCell],
    options: BrinsonOptions,
    row_of: impl Fn(usize) -> usize,
) -> Result<()> {
    let mut total_b = 0.0;
    for (cell, sum) in out.iter_mut().zip(sums) {
        let rp = sum.portfolio.ret("portfolio", || row_of(sum.slot))?;
        let rb = sum.benchmark.ret("benchmark", || row_of(sum.slot))?;
        // A sector held on one side only takes the other side's return: pure allocation.
        let (rp, rb) = match (rp.is_nan(), rb.is_nan()) {
            (true, false) => (rb, rb),
            (false, true) => (rp, rp),
            _ => (rp, rb),
        };
        *cell = SectorCell {
            rows: sum.rows,
            wp: sum.portfolio.weight,
            wb: sum.benchmark.weight,
            rp,
            rb,
            ..SectorCell::default()
        };
        total_b += sum.benchmark.contribution;
    }
    // Return of the portfolio's weights on the benchmark's sector returns (semi-notional).
    let semi_notional: f64 = out
        .iter()
        .filter(|c| c.wp != 0.0)
        .map(|c| c.wp * c.rb)
        .sum();
    if options.method == BrinsonMethod::Geometric && (total_b <= -1.0 || semi_notional <= -1.0) {
        let row = sums.first().map_or(0, |s| row_of(s.slot));
        return Err(at_row(
            row,
            "geometric attribution needs benchmark returns above -100%",
        ));
    }
    // Sectors held on neither side (NaN returns) keep zero effects.
    for cell in out.iter_mut().filter(|c| !c.rb.is_nan()) {
        let (active, excess) = (cell.wp - cell.wb, cell.rp - cell.rb);
        match options.method {
            BrinsonMethod::HoodBeebower => {
                cell.allocation = active * cell.rb;
                cell.selection = cell.wb * excess;
                cell.interaction = active * excess;
            }
            BrinsonMethod::Fachler => {
                cell.allocation = active * (cell.rb - total_b);
                cell.selection = cell.wb * excess;
                cell.interaction = active * excess;
            }
            BrinsonMethod::Geometric => {
                cell.allocation = active * (cell.rb - total_b) / (1.0 + total_b);
                cell.selection = cell.wp * excess / (1.0 + semi_notional);
            }
        }
        if options.top_down {
            cell.selection += cell.interaction;
            cell.interaction = 0.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bacon_example(method: BrinsonMethod, top_down: bool) -> Vec<SectorCell> {
        // Three sectors on one date, sector-level input.
        let (wp, wb) = ([0.4, 0.3, 0.3], [0.4, 0.2, 0.4]);
        let (rp, rb) = ([0.20, -0.05, 0.06], [0.10, -0.04, 0.08]);
        let input = BrinsonInput {
            date_starts: &[0, 3],
            sectors: Keys::U8(&[0, 1, 2]),
            assets: None,
            portfolio: Side {
                weight: &wp,
                ret: &rp,
                names: ("wp", "rp"),
            },
            benchmark: Side {
                weight: &wb,
                ret: &rb,
                names: ("wb", "rb"),
            },
        };
        brinson(
            &input,
            BrinsonOptions { method, top_down },
            &Interrupt::new(),
        )
        .unwrap()
        .cells
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-15
    }

    #[test]
    fn fachler_three_sectors() {
        let cells = bacon_example(BrinsonMethod::Fachler, false);
        // Rb = 6.4%: allocation (wp - wb)(rb - Rb).
        let allocation = [0.0, 0.1 * (-0.04 - 0.064), -0.1 * (0.08 - 0.064)];
        let selection = [0.4 * 0.10, 0.2 * -0.01, 0.4 * -0.02];
        let interaction = [0.0, 0.1 * -0.01, -0.1 * -0.02];
        for (i, cell) in cells.iter().enumerate() {
            assert!(close(cell.allocation, allocation[i]), "{i}: {cell:?}");
            assert!(close(cell.selection, selection[i]));
            assert!(close(cell.interaction, interaction[i]));
        }
        let total: f64 = cells
            .iter()
            .map(|c| c.allocation + c.selection + c.interaction)
            .sum();
        assert!(close(total, 0.083 - 0.064));
    }

    #[test]
    fn top_down_folds_interaction_into_selection() {
        let cells = bacon_example(BrinsonMethod::HoodBeebower, true);
        for (cell, (wp, excess)) in cells.iter().zip([(0.4, 0.10), (0.3, -0.01), (0.3, -0.02)]) {
            assert!(close(cell.selection, wp * excess));
            assert_eq!(cell.interaction, 0.0);
        }
    }

    #[test]
    fn geometric_effects_compound_to_the_geometric_excess() {
        let cells = bacon_example(BrinsonMethod::Geometric, false);
        let allocation: f64 = cells.iter().map(|c| c.allocation).sum();
        let selection: f64 = cells.iter().map(|c| c.selection).sum();
        let excess = 1.083 / 1.064 - 1.0;
        assert!(close((1.0 + allocation) * (1.0 + selection) - 1.0, excess));
    }

    #[test]
    fn holdings_aggregate_per_side_and_absent_sides_take_the_other_return() {
        // Date 0: sector 0 has two holdings, sector 1 only in the benchmark.
        let ret = [0.01, 0.03, -0.02];
        let input = BrinsonInput {
            date_starts: &[0, 3],
            sectors: Keys::U64(&[10, 10, 20]),
            assets: Some(Keys::U32(&[0, 1, 2])),
            portfolio: Side {
                weight: &[0.25, 0.75, 0.0],
                ret: &ret,
                names: ("wp", "ret"),
            },
            benchmark: Side {
                weight: &[0.5, 0.0, 0.5],
                ret: &ret,
                names: ("wb", "ret"),
            },
        };
        let options = BrinsonOptions {
            method: BrinsonMethod::Fachler,
            top_down: false,
        };
        let out = brinson(&input, options, &Interrupt::new()).unwrap();
        let [a, b] = [out.cells[0], out.cells[1]];
        assert!(close(a.rp, 0.25 * 0.01 + 0.75 * 0.03) && close(a.rb, 0.01));
        assert_eq!(
            (b.rp, b.rb, b.selection, b.interaction),
            (-0.02, -0.02, 0.0, 0.0)
        );
        let duplicate = BrinsonInput {
            assets: Some(Keys::U32(&[0, 1, 0])),
            ..input
        };
        let err = brinson(&duplicate, options, &Interrupt::new())
            .err()
            .unwrap();
        assert_eq!(err, at_row(2, "asset appears twice on this date"));
    }

    #[test]
    fn many_sectors_on_a_date_keep_their_first_rows() {
        // Two dates of 5000 hashed sectors; the second date lists them in reverse and
        // adds one new sector at its end.
        let n = 5000u64;
        let hashed = |k: u64| k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 63;
        let mut keys: Vec<u64> = (0..n).map(hashed).collect();
        keys.extend((0..=n).rev().map(hashed));
        let rows = keys.len();
        let weight = vec![1.0 / n as f64; rows];
        let ret = vec![0.01; rows];
        let mut second = weight.clone();
        second[n as usize] = 0.0; // the new sector is empty on both sides
        let input = BrinsonInput {
            date_starts: &[0, n as usize, rows],
            sectors: Keys::U64(&keys),
            assets: None,
            portfolio: Side {
                weight: &second,
                ret: &ret,
                names: ("wp", "rp"),
            },
            benchmark: Side {
                weight: &second,
                ret: &ret,
                names: ("wb", "rb"),
            },
        };
        let options = BrinsonOptions {
            method: BrinsonMethod::Fachler,
            top_down: false,
        };
        let out = brinson(&input, options, &Interrupt::new()).unwrap();
        assert_eq!(out.n_sectors, n as usize + 1);
        for (code, &row) in out.sector_rows.iter().enumerate() {
            assert!(keys[..row].iter().all(|&k| k != keys[row]), "code {code}");
        }
        assert_eq!(out.sector_rows[n as usize], n as usize);
    }

    #[test]
    fn repeated_date_layouts_reuse_checks_and_slots_exactly() {
        // Four dates of three holdings; dates 1 and 3 repeat date 0's layout, date 2
        // differs. Hashed keys (table mode) must give what small codes give.
        let codes: [u16; 12] = [0, 1, 2, 0, 1, 2, 2, 0, 1, 0, 1, 2];
        let sectors: [u8; 12] = [0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1];
        let hashed = |k: u64| k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 63;
        let asset_hashes: Vec<u64> = codes.iter().map(|&c| hashed(u64::from(c))).collect();
        let sector_hashes: Vec<u64> = sectors.iter().map(|&c| hashed(u64::from(c))).collect();
        let wp = [0.5, 0.5, 0.0, 0.2, 0.3, 0.5, 0.1, 0.6, 0.3, 1.0, 0.0, 0.0];
        let wb = [0.4, 0.3, 0.3, 0.4, 0.3, 0.3, 0.3, 0.4, 0.3, 0.4, 0.3, 0.3];
        let ret = [
            0.01, 0.02, -0.01, 0.0, 0.03, 0.01, 0.02, -0.02, 0.01, 0.05, 0.0, -0.03,
        ];
        let run = |sectors: Keys<'_>, assets: Keys<'_>| {
            let input = BrinsonInput {
                date_starts: &[0, 3, 6, 9, 12],
                sectors,
                assets: Some(assets),
                portfolio: Side {
                    weight: &wp,
                    ret: &ret,
                    names: ("wp", "ret"),
                },
                benchmark: Side {
                    weight: &wb,
                    ret: &ret,
                    names: ("wb", "ret"),
                },
            };
            let options = BrinsonOptions {
                method: BrinsonMethod::Fachler,
                top_down: false,
            };
            brinson(&input, options, &Interrupt::new()).map(|out| out.cells)
        };
        let direct = run(Keys::U8(&sectors), Keys::U16(&codes)).unwrap();
        let probed = run(Keys::U64(&sector_hashes), Keys::U64(&asset_hashes)).unwrap();
        assert_eq!(direct, probed);
        // Date 2: sector 1 holds assets 2 and 1, sector 0 asset 0.
        let date2 = &direct[2 * 2..3 * 2];
        assert!((date2[1].wp - 0.4).abs() < 1e-15 && (date2[0].wp - 0.6).abs() < 1e-15);
        // A repeat inside a date that follows a date with the same first keys.
        let mut twice = asset_hashes.clone();
        twice[11] = twice[10];
        let err = run(Keys::U64(&sector_hashes), Keys::U64(&twice)).unwrap_err();
        assert_eq!(err, at_row(11, "asset appears twice on this date"));
    }

    #[test]
    fn a_set_interrupt_stops_the_call_with_an_error() {
        let n_dates = 200;
        let date_starts: Vec<usize> = (0..=n_dates).map(|d| 3 * d).collect();
        let sectors: Vec<u8> = (0..3 * n_dates).map(|r| (r % 3) as u8).collect();
        let w = vec![1.0 / 3.0; 3 * n_dates];
        let r = vec![0.01; 3 * n_dates];
        let side = Side {
            weight: &w,
            ret: &r,
            names: ("wp", "rp"),
        };
        let input = BrinsonInput {
            date_starts: &date_starts,
            sectors: Keys::U8(&sectors),
            assets: None,
            portfolio: side,
            benchmark: side,
        };
        let options = BrinsonOptions {
            method: BrinsonMethod::Fachler,
            top_down: false,
        };
        let out = brinson(&input, options, &Interrupt::new()).unwrap();
        assert_eq!(out.cells.len(), 3 * n_dates);
        let stop = Interrupt::new();
        stop.set();
        assert_eq!(
            brinson(&input, options, &stop).err(),
            Some(crate::Error::Interrupted)
        );
    }
}
